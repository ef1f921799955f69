// libFuzzer target: the model file (host/model_file.cpp) and what `eval`/`predict`/`show` do with it
// (load_model_or_checkpoint in host/checkpoint.cpp): a --save model file goes to load_trained_model
// (host/model_io.cpp: build_model on the file's architecture string, then the tensor count, names
// and shapes against that architecture); a checkpoint (a "format" metadata key) to the checkpoint
// reader that --resume uses (every metadata key: recipe, settings, position; then the parameter and
// optimiser-moment tensors).
//
// Input: one mode byte, then the file. Mode bit 0 set: the target appends the file's CRC-32, so a
// mutation anywhere still makes a container with a valid checksum and reaches the structural checks
// and model_io (tensor names, shapes); clear: the bytes are the whole file, checksum included, as a
// corrupt download or a hand-made file would be. Mode bit 1 set (with bit 0): the input after the
// mode byte is the arch text, a NUL, then the file from the metadata count on; the target writes
// magic, version and the arch length in front, so the arch string mutates freely (a changed length
// would otherwise break the container before the arch is read). The file is read through a memfd
// (fuzz_util.h). Only InputError may escape (the loaders turn the arch parser's UsageError into
// InputError; UsageError is accepted as well). After a successful load the arena has exactly
// the model's size and the model's spec rebuilds the same model. Run with -malloc_limit_mb=64
// (tests/fuzz/run.sh): a model file of a few KB that makes the loader allocate 64 MB is a finding.
// Seeds (tests/fuzz/make_seeds.cpp): small valid model files of tiny architectures and a checkpoint,
// in all modes.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "checkpoint.h"
#include "model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static convnet::fuzz::MemFile file;
  if (size < 1) return 0;
  std::vector<uint8_t> bytes;
  if ((data[0] & 3) == 3) {
    const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data + 1, 0, size - 1));
    if (!nul) return 0;
    const size_t arch_len = static_cast<size_t>(nul - (data + 1));
    const char magic_version[12] = {'C', 'N', 'V', 'N', 'M', 'O', 'D', 'L', 1, 0, 0, 0};
    bytes.assign(magic_version, magic_version + 12);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(arch_len >> (8 * i)));
    bytes.insert(bytes.end(), data + 1, data + size);
    bytes.erase(bytes.begin() + 16 + static_cast<std::ptrdiff_t>(arch_len));  // the NUL
  } else {
    bytes.assign(data + 1, data + size);
  }
  if (data[0] & 1) {
    uint32_t crc = static_cast<uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), bytes.data(), bytes.size()));
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  }
  const std::string& path = file.write(bytes.data(), bytes.size());
  std::optional<convnet::TrainedModel> loaded;
  convnet::fuzz::only_documented_errors("load_model_or_checkpoint",
                                        [&] { loaded = convnet::load_model_or_checkpoint(path); });
  if (!loaded) return 0;
  const convnet::Model& model = loaded->model;
  FUZZ_EXPECT(loaded->dataset.empty() || loaded->dataset == "mnist" || loaded->dataset == "fashion",
              "dataset '" + loaded->dataset + "'");
  FUZZ_EXPECT(loaded->params.size() == model.arena_size, std::to_string(loaded->params.size()) +
                                                             " floats for an arena of " +
                                                             std::to_string(model.arena_size));
  convnet::fuzz::expect_spec_round_trip(model);
  return 0;
}

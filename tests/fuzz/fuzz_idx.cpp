// libFuzzer target: the IDX dataset reader (host/idx.cpp) on hostile bytes.
//
// One input is used three ways:
//   1. parse_idx_images and parse_idx_labels on the raw bytes (the parsers after any decompression);
//   2. read_maybe_gzip on the bytes as a file (memfd, fuzz_util.h): the size cap, the gzip path
//      (multi-member streams, trailing garbage, truncation, corrupt deflate data, the bomb limit) or
//      the raw path, then both parsers on what it returns, under a ".gz" name so the messages'
//      decompressed-offset wording runs too.
// Only InputError may escape. After a successful parse: the count matches the payload (784 bytes
// per image, one per label) and every label is below 10.
// Seeds (tests/fuzz/make_seeds.cpp): 0-, 1- and 3-image idx3 files and idx1 files, raw and gzip,
// and a two-member gzip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "idx.h"

namespace {

using convnet::fuzz::only_documented_errors;

void parse_both(const std::vector<uint8_t>& bytes, const std::string& name) {
  only_documented_errors("parse_idx_images", [&] {
    int count = -1;
    std::vector<uint8_t> images = convnet::parse_idx_images(bytes, name, &count);
    FUZZ_EXPECT(count >= 0 && images.size() == static_cast<size_t>(count) * convnet::kImagePixels,
                "count " + std::to_string(count) + ", " + std::to_string(images.size()) + " pixel bytes");
  });
  only_documented_errors("parse_idx_labels", [&] {
    int count = -1;
    std::vector<uint8_t> labels = convnet::parse_idx_labels(bytes, name, &count);
    FUZZ_EXPECT(count >= 0 && labels.size() == static_cast<size_t>(count),
                "count " + std::to_string(count) + ", " + std::to_string(labels.size()) + " label bytes");
    for (uint8_t l : labels) FUZZ_EXPECT(l < convnet::kNumClasses, "label " + std::to_string(l));
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static convnet::fuzz::MemFile file;
  const std::vector<uint8_t> raw(data, data + size);
  parse_both(raw, "fuzz-images-idx3-ubyte");
  const std::string& path = file.write(data, size);
  only_documented_errors("read_maybe_gzip", [&] {
    // May be empty (a valid gzip of nothing): the parsers then refuse it as an empty file.
    parse_both(convnet::read_maybe_gzip(path), "fuzz-images-idx3-ubyte.gz");
  });
  return 0;
}

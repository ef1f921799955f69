// The model file: architecture, named tensors and metadata in one checksummed binary file.
//
// Format (all integers little-endian), version 1:
//   magic "CNVNMODL" (8 bytes) | u32 version | u32 arch length | arch spec (UTF-8)
//   u32 metadata count | per entry: u32 key len, key, u32 value len, value
//   u32 tensor count   | per tensor: u32 name len, name, u32 ndim, ndim x u64 dims, prod(dims) f32
//   u32 CRC-32 (zlib) of every byte before it
// Written atomically: a temporary file in the same folder, fsync, rename. Loading checks magic,
// version, every length against the bytes left (before allocating), and the CRC; any problem throws
// InputError naming the file and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace convnet {

struct NamedTensor {
  std::string name;
  std::vector<uint64_t> shape;
  std::vector<float> data;  // prod(shape) values
};

struct ModelFile {
  std::string arch;                                              // canonical architecture spec
  std::vector<std::pair<std::string, std::string>> metadata;     // e.g. dataset, epochs, accuracy
  std::vector<NamedTensor> tensors;

  const NamedTensor* find(const std::string& name) const;
  std::string meta(const std::string& key, const std::string& fallback = "") const;
};

void save_model_file(const std::string& path, const ModelFile& model);
ModelFile load_model_file(const std::string& path);

}  // namespace convnet

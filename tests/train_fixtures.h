// Test data for the training tests (log, checkpoint, resume, interrupt): a small learnable
// MNIST-shaped data set, in memory or written as an IDX folder `convnet train --data` reads.
// The images are synthetic_images.h's bar_digits.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "idx.h"
#include "synthetic_images.h"

namespace convnet::test {

inline Dataset bar_dataset(int train, int test, uint64_t seed) {
  Dataset d;
  d.name = "mnist";
  d.dir = "(synthetic)";
  d.train = bar_digits(train, seed);
  d.test = bar_digits(test, seed + 1000);
  return d;
}

namespace detail {

inline void put_be32(std::vector<uint8_t>& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

inline bool write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(b.data(), 1, b.size(), f) == b.size();
  return std::fclose(f) == 0 && ok;
}

inline bool write_idx_pair(const std::string& dir, const std::string& stem, const ImageSet& s) {
  std::vector<uint8_t> images, labels;
  put_be32(images, 2051);
  put_be32(images, static_cast<uint32_t>(s.count));
  put_be32(images, kImageSide);
  put_be32(images, kImageSide);
  images.insert(images.end(), s.images.begin(), s.images.end());
  put_be32(labels, 2049);
  put_be32(labels, static_cast<uint32_t>(s.count));
  labels.insert(labels.end(), s.labels.begin(), s.labels.end());
  return write_bytes(dir + "/" + stem + "-images-idx3-ubyte", images) &&
         write_bytes(dir + "/" + stem + "-labels-idx1-ubyte", labels);
}

}  // namespace detail

// Writes d as raw IDX files (train-*, t10k-*) into the existing folder dir; false on an I/O error.
inline bool write_idx_folder(const std::string& dir, const Dataset& d) {
  return detail::write_idx_pair(dir, "train", d.train) && detail::write_idx_pair(dir, "t10k", d.test);
}

}  // namespace convnet::test

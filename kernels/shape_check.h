// Host-side argument checks the launchers share: a bad shape is std::invalid_argument naming the
// launcher, and a tensor too big for the kernels' 32-bit index math is std::length_error naming the
// tensor and its element count. Plain C++ (no CUDA syntax); include from kernel files' host halves.
#pragma once

#include <climits>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace convnet {

[[noreturn]] inline void bad_shape(const char* who, const std::string& what) {
  throw std::invalid_argument(std::string(who) + ": " + what);
}

// Throws unless count (a tensor's element count) fits a 32-bit signed index.
inline void check_int32(const char* who, const char* tensor, size_t count) {
  if (count > size_t(INT_MAX))
    throw std::length_error(std::string(who) + ": " + tensor + " has " + std::to_string(count) +
                            " elements; the kernel indexes with 32 bits (at most " + std::to_string(INT_MAX) + ")");
}

}  // namespace convnet

// Error types shared by the host code.
//
// Every failure a user can cause (bad file, bad flag) is one of these: main() catches them, prints
// ONE line "convnet: error: <message>" and exits with the matching code. Messages name what was
// expected, what was found and where (file name, byte offset, flag name).
#pragma once

#include <stdexcept>
#include <string>

namespace convnet {

constexpr int kExitUsage = 2;    // bad flag or bad input file
constexpr int kExitNumeric = 3;  // NaN/Inf during training
constexpr int kExitInterrupted = 130;  // training stopped by Ctrl-C/SIGTERM (128 + SIGINT, as shells report)

// A file or other user-supplied input is unusable (missing, truncated, corrupt, wrong shape).
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

// A command-line flag is missing, unknown or out of range.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& what) : std::runtime_error(what) {}
};

// A resource ran out (device memory): the message says how much was asked for and for what.
class ResourceError : public std::runtime_error {
 public:
  explicit ResourceError(const std::string& what) : std::runtime_error(what) {}
};

// Training diverged: a NaN or Inf appeared in the loss.
class NumericError : public std::runtime_error {
 public:
  explicit NumericError(const std::string& what) : std::runtime_error(what) {}
};

// Validated invariant that must never be compiled out (shape mismatch, internal misuse).
#define CONVNET_CHECK(cond, msg)                                                            \
  do {                                                                                      \
    if (!(cond))                                                                            \
      throw std::logic_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + \
                             "check failed: " #cond ": " + (msg));                          \
  } while (0)

}  // namespace convnet

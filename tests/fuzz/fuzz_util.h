// Shared pieces of the libFuzzer targets (tests/fuzz/fuzz_*.cpp).
//
// The contract every target checks: a hostile input may only make the code under test throw one of
// the documented error types, InputError or UsageError. Anything else is a finding: a crash or
// sanitizer report (ASan, UBSan), another exception type (std::bad_alloc from an allocation sized by
// the input, std::logic_error from a CONVNET_CHECK the input should never reach), a leak (libFuzzer's
// leak check), more than -timeout seconds or -rss_limit_mb memory for one input. A broken invariant
// a target checks after a successful parse aborts through FUZZ_EXPECT with what was found.
//
// The loaders under test take a path, so a target hands them its input as a file without touching
// the disk: one memfd per process, rewritten for each input and opened as /proc/self/fd/N. The
// loaders stat, open and read it exactly as a regular file (it is one, on tmpfs).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "errors.h"
#include "model.h"

namespace convnet::fuzz {

// Report a broken invariant and abort, so libFuzzer keeps the input as a crash file.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n==FUZZ FINDING== %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_EXPECT(cond, msg)                                                               \
  do {                                                                                       \
    if (!(cond)) ::convnet::fuzz::finding(std::string("invariant failed: " #cond ": ") + (msg)); \
  } while (0)

// Runs f; InputError and UsageError are the expected refusals of a hostile input and are
// swallowed. Any other exception is a finding, reported with its type and message.
template <class F>
void only_documented_errors(const char* what, F&& f) {
  try {
    f();
  } catch (const InputError&) {
  } catch (const UsageError&) {
  } catch (const std::exception& e) {
    finding(std::string(what) + ": undocumented exception " + typeid(e).name() + ": " + e.what());
  } catch (...) {
    finding(std::string(what) + ": undocumented exception of a non-std type");
  }
}

// The canonical spec of a built model (what a model file stores) must rebuild the same model:
// otherwise a model could be trained and saved but never loaded again. Every dropout rate must be
// in [0, 1) as the float the layers use (1 / (1 - rate) scales the kept values).
inline void expect_spec_round_trip(const Model& model) {
  for (const Layer& l : model.layers)
    if (l.spec.kind == LayerKind::Dropout)
      FUZZ_EXPECT(l.spec.rate >= 0.0f && l.spec.rate < 1.0f,
                  "'" + model.spec + "': dropout rate " + std::to_string(l.spec.rate) + " outside [0, 1)");
  Model again;
  try {
    again = build_model(model.spec);
  } catch (const std::exception& e) {
    finding("canonical spec '" + model.spec + "' does not rebuild: " + e.what());
  }
  FUZZ_EXPECT(again.spec == model.spec && again.arena_size == model.arena_size &&
                  again.layers.size() == model.layers.size(),
              "'" + model.spec + "' rebuilds as '" + again.spec + "'");
  for (size_t i = 0; i < model.layers.size(); ++i)
    FUZZ_EXPECT(again.layers[i].spec.rate == model.layers[i].spec.rate,
                "'" + model.spec + "': layer " + std::to_string(i) + " rate " +
                    std::to_string(model.layers[i].spec.rate) + " rebuilds as " +
                    std::to_string(again.layers[i].spec.rate));
}

// A file in memory (memfd) that the path-based loaders read like any regular file.
class MemFile {
 public:
  MemFile() {
    fd_ = memfd_create("convnet-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replace the whole content with data[0, size); returns the path to open.
  const std::string& write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) fail("ftruncate");
    size_t done = 0;
    while (done < size) {
      ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) fail("pwrite");
      done += static_cast<size_t>(n);
    }
    return path_;
  }

 private:
  [[noreturn]] static void fail(const char* call) {
    std::perror(call);
    std::abort();
  }
  int fd_ = -1;
  std::string path_;
};

}  // namespace convnet::fuzz

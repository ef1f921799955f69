// convnet: entry point. Every failure a user can cause ends here as ONE line on stderr,
// "convnet: error: <what>", and a non-zero exit code (2 usage/input/out of memory, 3 numeric,
// 1 internal).
// An interrupted training run returns kExitInterrupted (130) from its command, after its checkpoint.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "commands.h"
#include "device_errors.h"
#include "errors.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return convnet::run_command(args);
  } catch (const convnet::UsageError& e) {
    std::fprintf(stderr, "convnet: error: %s\n", e.what());
    return convnet::kExitUsage;
  } catch (const convnet::InputError& e) {
    std::fprintf(stderr, "convnet: error: %s\n", e.what());
    return convnet::kExitUsage;
  } catch (const convnet::ResourceError& e) {
    std::fprintf(stderr, "convnet: error: %s\n", e.what());
    return convnet::kExitUsage;
  } catch (const convnet::DeviceOutOfMemory& e) {  // out of GPU memory outside the backend's allocations
    std::fprintf(stderr, "convnet: error: %s\n", e.what());
    return convnet::kExitUsage;
  } catch (const convnet::NumericError& e) {
    std::fprintf(stderr, "convnet: error: %s\n", e.what());
    return convnet::kExitNumeric;
  } catch (const std::bad_alloc&) {  // a resource error without a size: still the user's to fix
    std::fprintf(stderr, "convnet: error: out of host memory\n");
    return convnet::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convnet: internal error: %s\n", e.what());
    return 1;
  }
}

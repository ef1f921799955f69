// The subcommands of `convnet` (host/commands.cpp); main.cpp maps their exceptions to exit codes.
#pragma once

#include <string>
#include <vector>

namespace convnet {

// Runs `convnet <args...>` (args excludes the program name). Returns the exit code; throws
// UsageError / InputError / NumericError for failures main() reports as one line.
int run_command(const std::vector<std::string>& args);

}  // namespace convnet

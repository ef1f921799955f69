// Run the built `convnet` binary as a child process and capture what it printed and its exit code.
// Used by the CLI tests (error lines, exit codes) that must see the program as a user does.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace convnet::test {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
  // Non-empty lines of stderr.
  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(l);
    return lines;
  }
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The program under test: $CONVNET_BIN when set (the GPU check script runs a build made on another
// machine, where the compiled-in path does not exist), else the build's CONVNET_BINARY.
inline std::string convnet_binary() {
  const char* env = std::getenv("CONVNET_BIN");
  return env && *env ? env : CONVNET_BINARY;
}

// The source tree (for its scripts, such as bench/plot_metrics.py): $CONVNET_SOURCE_DIR when set (the
// GPU check script sets it beside CONVNET_BIN, for the same reason), else the build's CONVNET_SOURCE_DIR.
inline std::string source_dir() {
  const char* env = std::getenv("CONVNET_SOURCE_DIR");
  return env && *env ? env : CONVNET_SOURCE_DIR;
}

// argv for execv: the program under test, then args. The pointers point into the object's own
// strings, so it must outlive the exec (fork copies it into the child).
class ConvnetArgv {
 public:
  explicit ConvnetArgv(const std::vector<std::string>& args) : strings_{convnet_binary()} {
    strings_.insert(strings_.end(), args.begin(), args.end());
    for (std::string& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  ConvnetArgv(const ConvnetArgv&) = delete;
  ConvnetArgv& operator=(const ConvnetArgv&) = delete;
  const char* path() const { return pointers_[0]; }
  char* const* argv() const { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

// Resource limits for the child (0: unlimited), to provoke a full disk or exhausted memory.
struct ChildLimits {
  rlim_t file_bytes = 0;     // RLIMIT_FSIZE, with SIGXFSZ ignored: a write past it fails with EFBIG
  rlim_t address_bytes = 0;  // RLIMIT_AS: allocations past it fail (std::bad_alloc, ENOMEM)
};

// Runs the program with args (no shell), stdout/stderr into temporary files, under `limits`. A run
// that hangs or takes over two minutes dies by SIGALRM and reports exit_code -1.
inline ProcessResult run_convnet(const std::vector<std::string>& args, const ChildLimits& limits = {}) {
  char out_path[] = "/tmp/convnet_out_XXXXXX", err_path[] = "/tmp/convnet_err_XXXXXX";
  const int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  const ConvnetArgv argv(args);
  std::fflush(nullptr);
  ProcessResult r;
  const pid_t pid = fork();
  if (pid == 0) {  // child: only async-signal-safe calls until exec
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (limits.file_bytes) {
      const struct rlimit l = {limits.file_bytes, limits.file_bytes};
      std::signal(SIGXFSZ, SIG_IGN);  // an ignored signal stays ignored across exec
      if (setrlimit(RLIMIT_FSIZE, &l) != 0) _exit(126);
    }
    if (limits.address_bytes) {
      const struct rlimit l = {limits.address_bytes, limits.address_bytes};
      if (setrlimit(RLIMIT_AS, &l) != 0) _exit(126);
    }
    alarm(120);
    execv(argv.path(), argv.argv());
    _exit(127);
  }
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  close(out_fd);
  close(err_fd);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  unlink(out_path);
  unlink(err_path);
  return r;
}

}  // namespace convnet::test

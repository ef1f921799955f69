// A child process the test keeps talking to while it runs: start it (no shell, in a given folder,
// stdout and stderr into files), watch its output, signal it, wait for it with a deadline. For the
// tests that interrupt `convnet train` (process.h's run_convnet only runs a program to its end).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace convnet::test {

class Child {
 public:
  // Starts argv[0] (a path, or a name looked up in PATH) with argv in folder cwd; stdout and stderr
  // go to out_path and err_path.
  Child(const std::vector<std::string>& argv, const std::string& cwd, const std::string& out_path,
        const std::string& err_path)
      : out_path_(out_path), err_path_(err_path) {
    std::vector<std::string> args = argv;
    std::vector<char*> c_args;
    for (std::string& a : args) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {  // child: only async-signal-safe calls until exec
      const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || chdir(cwd.c_str()) != 0) _exit(126);
      alarm(300);  // a runaway child dies even if the test forgets it
      execvp(c_args[0], c_args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  std::string out() const { return slurp(out_path_); }
  std::string err() const { return slurp(err_path_); }
  void signal(int sig) const { kill(pid_, sig); }

  // Polls stdout (or stderr) every millisecond until it contains needle; false on timeout or when
  // the child ends first.
  bool wait_for(const std::string& needle, double seconds, bool in_stderr = false) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if ((in_stderr ? err() : out()).find(needle) != std::string::npos) return true;
      if (exited()) return (in_stderr ? err() : out()).find(needle) != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  // The exit code; 128 + N when killed by signal N; -1 when it outlived the deadline (then killed).
  int wait(double seconds) {
    if (pid_ <= 0) return -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!exited() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      reaped_ = true;
      return -1;
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }

 private:
  bool exited() {
    if (reaped_) return true;
    if (pid_ <= 0) return reaped_ = true;
    if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return reaped_;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

}  // namespace convnet::test

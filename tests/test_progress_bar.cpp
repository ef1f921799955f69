// `convnet train` with its standard output on a terminal, as a user at a shell sees it: a live
// progress bar per epoch ("  7/18 [===========>..................] - ETA: 1s"), redrawn in place
// with carriage returns, then erased so the epoch's Keras line takes its place. The program runs
// in a child process on a pseudo-terminal (raw mode: what it wrote, byte for byte), on a synthetic
// IDX folder the test writes, so this runs without MNIST_DIR. Without a terminal there is no bar
// (test_cli.cpp, Cli.TrainSaveThenEval).
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "process.h"
#include "temp_dir.h"
#include "train_fixtures.h"

namespace convnet::test {
namespace {

struct TerminalRun {
  int exit_code = -1;  // -1 when killed by a signal
  std::string screen;  // everything written to the terminal
  std::string err;     // stderr, which goes to a file
  std::string no_terminal;  // why no pseudo-terminal could be opened; empty when one was
};

// Runs the program with args, its stdout on a fresh pseudo-terminal, reading the terminal until
// the program closes it. A run that hangs dies by SIGALRM after two minutes.
TerminalRun run_on_terminal(const std::vector<std::string>& args, const std::string& err_path) {
  TerminalRun r;
  termios raw{};
  cfmakeraw(&raw);
  int master = -1, slave = -1;
  if (openpty(&master, &slave, nullptr, &raw, nullptr) != 0) {
    r.no_terminal = std::string("openpty: ") + std::strerror(errno);
    return r;
  }
  const ConvnetArgv argv(args);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {  // child: only async-signal-safe calls until exec
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err < 0 || dup2(slave, 1) < 0 || dup2(err, 2) < 0) _exit(126);
    close(master);
    alarm(120);
    execv(argv.path(), argv.argv());
    _exit(127);
  }
  close(slave);
  char buf[4096];
  for (;;) {  // Linux reports EIO once the last holder of the terminal's other end closes it
    const ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) {
      r.screen.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  close(master);
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.err = slurp(err_path);
  return r;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!s.empty() && s.back() == sep) parts.push_back("");
  return parts;
}

TEST(ProgressBar, ATerminalSeesTheBarRedrawnThenErasedBeforeEachEpochLine) {
  TempDir dir("convnet_progress");
  const std::string data = dir.file("data");
  std::filesystem::create_directory(data);
  ASSERT_TRUE(write_idx_folder(data, bar_dataset(1000, 50, 5)));
  // 900 training images in 18 steps of 50.
  const TerminalRun t = run_on_terminal({"train", "--device", "cpu", "--data", data, "--arch",
                                         "conv8-pool-flatten-dropout0.5-dense10", "--epochs", "2", "--batch-size",
                                         "50", "--no-test"},
                                        dir.file("err"));
  if (!t.no_terminal.empty()) GTEST_SKIP() << "no pseudo-terminal to run on (" << t.no_terminal << ")";
  ASSERT_EQ(t.exit_code, 0) << t.err << t.screen;
  EXPECT_EQ(t.err, "");

  const std::vector<std::string> lines = split(t.screen, '\n');
  const std::regex draw(R"( ?(\d+)/18 \[(=*)(>?)(\.*)\] - ETA: \d+s )");
  for (int epoch = 1; epoch <= 2; ++epoch) {
    SCOPED_TRACE("epoch " + std::to_string(epoch));
    const std::string title = "Epoch " + std::to_string(epoch) + "/2";
    size_t i = 0;
    while (i < lines.size() && lines[i] != title) ++i;
    ASSERT_LT(i + 1, lines.size()) << t.screen;
    // The line after the title: "\r" + one or more draws, each after a "\r", then the erase
    // ("\r", spaces, "\r"), then the epoch's line.
    const std::vector<std::string> parts = split(lines[i + 1], '\r');
    ASSERT_GE(parts.size(), 4u) << lines[i + 1];
    EXPECT_EQ(parts.front(), "") << "the bar starts at the start of the line";
    int last_done = 0;
    size_t widest = 0;
    for (size_t k = 1; k + 2 < parts.size(); ++k) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(parts[k], m, draw)) << "draw " << k << ": '" << parts[k] << "'";
      const int done = std::stoi(m[1].str());
      EXPECT_GT(done, last_done) << "each draw shows more steps done";
      last_done = done;
      // 30 columns; steps done × 30 / 18 of them filled, then an arrow unless full.
      const size_t filled = m[2].length();
      EXPECT_EQ(filled, static_cast<size_t>(done * 30 / 18)) << parts[k];
      EXPECT_EQ(filled + m[3].length() + m[4].length(), 30u) << parts[k];
      EXPECT_EQ(m[3].length(), filled < 30 ? 1u : 0u) << parts[k];
      widest = std::max(widest, parts[k].size());
    }
    EXPECT_EQ(last_done, 18) << "the last draw shows the epoch done";
    const std::string& erase = parts[parts.size() - 2];
    EXPECT_EQ(erase.find_first_not_of(' '), std::string::npos) << "'" << erase << "'";
    EXPECT_GE(erase.size(), widest) << "the erase covers the widest draw";
    EXPECT_EQ(parts.back().rfind("18/18 - ", 0), 0u) << parts.back();
    EXPECT_NE(parts.back().find(" - val_accuracy: "), std::string::npos) << parts.back();
  }
  // Nothing else on the terminal is redrawn.
  size_t bar_lines = 0;
  for (const std::string& l : lines) bar_lines += l.find('\r') != std::string::npos;
  EXPECT_EQ(bar_lines, 2u) << t.screen;
}

}  // namespace
}  // namespace convnet::test

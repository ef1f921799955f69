// SIGINT/SIGTERM handling for training (see interrupt.h).
#include "interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <csignal>

#include "errors.h"

namespace convnet {
namespace {

volatile std::sig_atomic_t g_signal = 0;
struct sigaction g_previous_int, g_previous_term;
bool g_installed = false;

void say(const char* text, size_t n) {
  ssize_t ignored = write(STDERR_FILENO, text, n);
  (void)ignored;  // nothing useful to do about a failed write in a signal handler
}

// Async-signal-safe: a flag, write(2) and _exit only.
extern "C" void on_interrupt(int sig) {
  if (g_signal != 0) {
    static const char kAgain[] = "\nconvnet: interrupted again: exiting now, without a new checkpoint\n";
    say(kAgain, sizeof kAgain - 1);
    _exit(kExitInterrupted);
  }
  g_signal = sig;
  static const char kFirst[] =
      "\nconvnet: interrupt: finishing the current step and writing a checkpoint "
      "(interrupt again to exit at once)\n";
  say(kFirst, sizeof kFirst - 1);
}

}  // namespace

InterruptScope::InterruptScope() {
  CONVNET_CHECK(!g_installed, "nested InterruptScope");
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);  // one handler runs at a time, whichever signal came
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = SA_RESTART;  // reads and writes in progress resume rather than fail with EINTR
  sigaction(SIGINT, &sa, &g_previous_int);
  sigaction(SIGTERM, &sa, &g_previous_term);
  g_installed = true;
}

InterruptScope::~InterruptScope() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
  g_installed = false;
  g_signal = 0;
}

bool InterruptScope::requested() { return g_signal != 0; }

int InterruptScope::signal_number() { return g_signal; }

}  // namespace convnet

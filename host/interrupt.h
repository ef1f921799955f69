// Ctrl-C (SIGINT) and SIGTERM during training.
//
// The FIRST signal only sets a flag (the one async-signal-safe thing a handler may do besides
// write(2) and _exit): the trainer polls it after every step, finishes that step, writes a
// checkpoint and returns, and `convnet train` exits with kExitInterrupted (130). The handler also
// writes one line to stderr at once, so the user sees that the signal arrived. A SECOND signal,
// any time after the first, calls _exit(130) from the handler: nothing more is written, and
// a checkpoint being written at that moment is left as its temporary file "<path>.tmp.<pid>",
// which is never read as a checkpoint (the previous checkpoint at <path> stays intact: the write
// is temp + fsync + rename) and is removed by the next successful checkpoint write.
//
// Polling the flag is a plain load, so the GPU step stays free of host waits.
#pragma once

namespace convnet {

// Installs the handlers for its lifetime and restores the previous ones (and clears the flag) when
// destroyed. One at a time.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  // Whether SIGINT or SIGTERM has arrived since the scope began; which one.
  static bool requested();
  static int signal_number();
};

}  // namespace convnet

#pragma once
// The stop signals of a long-running process: blocked in every thread (call this first thing in
// main, before any thread exists, so that threads inherit the mask) and awaited by one.

#include <signal.h>

namespace zm {

// SIGTERM and SIGINT.
inline sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Blocks the stop signals in the calling thread (and so in every thread it starts later),
// ignores SIGPIPE (a peer gone is an error return, not a death), and returns the set to sigwait.
inline sigset_t BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// Whether a stop signal is pending (arrived while blocked and nobody waits for it yet); takes it.
inline bool TakePendingStopSignal() {
  const sigset_t set = StopSignals();
  timespec zero{};
  return sigtimedwait(&set, nullptr, &zero) > 0;
}

}  // namespace zm

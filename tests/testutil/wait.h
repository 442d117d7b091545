#pragma once
// Waiting in tests: on a condition, with a deadline (never a bare sleep).

#include <chrono>
#include <functional>
#include <thread>

namespace zm::testutil {

// Polls `cond` until it holds (true) or `deadline` passes (false).
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace zm::testutil

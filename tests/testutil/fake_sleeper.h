#pragma once
// A kube::Sleeper that records every delay asked for and returns at once (or, while held,
// blocks until released or cancelled), so backoff is tested without waiting for it.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "common/kube/backoff.h"

namespace zm::testutil {

class FakeSleeper final : public kube::Sleeper {
 public:
  bool Sleep(std::chrono::milliseconds d, kube::Cancellation& cancel) override {
    std::unique_lock lock(mu_);
    sleeps_.push_back(d);
    cv_.notify_all();
    ++blocked_;
    while (held_ && !cancel.cancelled()) cv_.wait_for(lock, std::chrono::milliseconds(5));
    --blocked_;
    return !cancel.cancelled();
  }

  std::vector<std::chrono::milliseconds> sleeps() const {
    std::lock_guard lock(mu_);
    return sleeps_;
  }
  // Sleeps blocked by Hold right now.
  int blocked() const {
    std::lock_guard lock(mu_);
    return held_ ? blocked_ : 0;
  }
  // While held, Sleep blocks: the informer stays between two attempts.
  void Hold(bool held) {
    std::lock_guard lock(mu_);
    held_ = held;
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::chrono::milliseconds> sleeps_;
  bool held_ = false;
  int blocked_ = 0;
};

}  // namespace zm::testutil

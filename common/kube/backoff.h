#pragma once
// Exponential backoff with jitter for the informers' retries, and the seam that sleeps
// (tests inject a Sleeper that records the delays and returns at once).

#include <chrono>
#include <cstdint>
#include <random>

#include "common/kube/cancel.h"

namespace zm::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{800};  // client-go's reflector starts at 800 ms
  std::chrono::milliseconds max{30'000};   // and caps at 30 s
  double factor = 2.0;
  // Each delay is drawn uniformly from [base * (1 - jitter), base]: never above the cap, and
  // many agents restarted together spread out. 0 gives the exact sequence.
  double jitter = 0.5;
};

class Backoff {
 public:
  // `seed` 0: a random seed.
  explicit Backoff(BackoffPolicy policy, uint64_t seed = 0);

  // The next delay: initial * factor^attempts, capped at max, jittered. Counts an attempt.
  std::chrono::milliseconds Next();
  // Back to `initial` (after a healthy watch).
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  BackoffPolicy policy_;
  int attempts_ = 0;
  std::mt19937_64 rng_;
};

// Sleeps between retries; the informer's only source of waiting.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Waits `d` or until `cancel` fires; false when cancelled.
  virtual bool Sleep(std::chrono::milliseconds d, Cancellation& cancel) = 0;
};

// Real time, cut short by the cancellation.
class RealSleeper final : public Sleeper {
 public:
  bool Sleep(std::chrono::milliseconds d, Cancellation& cancel) override {
    return !cancel.WaitFor(d);
  }
  static RealSleeper& Get() {
    static RealSleeper sleeper;
    return sleeper;
  }
};

}  // namespace zm::kube

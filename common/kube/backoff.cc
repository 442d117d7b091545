#include "common/kube/backoff.h"

#include <algorithm>
#include <cmath>

namespace zm::kube {

Backoff::Backoff(BackoffPolicy policy, uint64_t seed)
    : policy_(policy), rng_(seed != 0 ? seed : std::random_device{}()) {}

std::chrono::milliseconds Backoff::Next() {
  const double cap = static_cast<double>(policy_.max.count());
  double base = static_cast<double>(policy_.initial.count());
  for (int i = 0; i < attempts_ && base < cap; ++i) base *= policy_.factor;
  base = std::min(base, cap);
  if (attempts_ < 64) ++attempts_;
  const double jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  double d = base;
  if (jitter > 0) {
    std::uniform_real_distribution<double> dist(base * (1 - jitter), base);
    d = dist(rng_);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(d)));
}

}  // namespace zm::kube

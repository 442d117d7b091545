#pragma once
// A one-shot cancellation signal between the thread that runs a long call (a watch, a list
// against a slow server, a backoff sleep) and the thread that wants it over (Stop()).
// Blocking code registers a waker for the duration of its wait (KubeClient wakes its
// curl_multi_poll with curl_multi_wakeup), so a cancel takes effect at once, not on a poll tick.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

namespace zm::kube {

class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Sets the flag, wakes WaitFor and runs every registered waker. Idempotent, thread-safe.
  void Cancel() {
    std::lock_guard lock(mu_);
    if (cancelled_.exchange(true)) return;
    for (auto& [id, wake] : wakers_) wake();
    cv_.notify_all();
  }

  bool cancelled() const { return cancelled_.load(); }

  // Waits until cancelled or `d` has passed; true when cancelled.
  bool WaitFor(std::chrono::nanoseconds d) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [this] { return cancelled_.load(); });
  }

  // Runs `wake` on Cancel() (at once when already cancelled) while the registration lives.
  // `wake` runs under the cancellation's lock: it must be quick and must not call back here.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& o) noexcept
        : owner_(std::exchange(o.owner_, nullptr)), id_(o.id_) {}
    Registration& operator=(Registration&& o) noexcept {
      if (this != &o) {
        Reset();
        owner_ = std::exchange(o.owner_, nullptr);
        id_ = o.id_;
      }
      return *this;
    }
    ~Registration() { Reset(); }

   private:
    friend class Cancellation;
    Registration(Cancellation* owner, uint64_t id) : owner_(owner), id_(id) {}
    void Reset() {
      if (owner_ == nullptr) return;
      std::lock_guard lock(owner_->mu_);
      owner_->wakers_.erase(id_);
      owner_ = nullptr;
    }
    Cancellation* owner_ = nullptr;
    uint64_t id_ = 0;
  };

  [[nodiscard]] Registration OnCancel(std::function<void()> wake) {
    std::lock_guard lock(mu_);
    if (cancelled_.load()) wake();
    const uint64_t id = next_id_++;
    wakers_.emplace(id, std::move(wake));
    return Registration(this, id);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> cancelled_{false};
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::function<void()>> wakers_;
};

}  // namespace zm::kube

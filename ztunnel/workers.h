#pragma once
// N worker threads, each running its own asio::io_context (DESIGN §5 "Threads"). A pod's
// listeners are assigned to one worker; a connection lives on the worker that accepted it.

#include <asio.hpp>
#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace zm::ztunnel {

class Workers {
 public:
  explicit Workers(size_t n);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  size_t size() const { return workers_.size(); }
  asio::io_context& ctx(size_t i) { return workers_[i]->ctx; }
  // Round robin over the workers.
  size_t Next() { return next_.fetch_add(1, std::memory_order_relaxed) % workers_.size(); }

  // Runs `fn` on worker i and waits for its result. After Stop(), runs it inline (no worker
  // thread touches the loop any more). Never call it from a worker thread.
  template <typename F>
  auto RunOn(size_t i, F fn) -> decltype(fn()) {
    if (stopped_.load()) return fn();
    // The posted handler owns the task: the worker may still be inside it when get() returns.
    auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto result = task->get_future();
    asio::post(workers_[i]->ctx, [task] { (*task)(); });
    return result.get();
  }

  // Stops every loop and joins the threads (connections in flight are dropped).
  void Stop();

 private:
  struct Worker {
    asio::io_context ctx{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{ctx.get_executor()};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace zm::ztunnel

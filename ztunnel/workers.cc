#include "ztunnel/workers.h"

#include <pthread.h>

#include "common/base/strings.h"

namespace zm::ztunnel {

Workers::Workers(size_t n) {
  if (n == 0) n = 1;
  for (size_t i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    Worker* raw = w.get();
    w->thread = std::thread([raw, i] {
      std::string name = StrCat("zt-worker-", i);
      pthread_setname_np(pthread_self(), name.c_str());
      // Handlers use error_code overloads and do not throw; an exception here is a bug
      // and terminates the process loudly.
      raw->ctx.run();
    });
    workers_.push_back(std::move(w));
  }
}

Workers::~Workers() { Stop(); }

void Workers::Stop() {
  if (stopped_.exchange(true)) return;
  for (auto& w : workers_) {
    w->guard.reset();
    w->ctx.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace zm::ztunnel

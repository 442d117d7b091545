#include "common/hbone/pool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::hbone {

namespace {
// Whether the pool behind `alive` was destroyed or shut down.
bool Gone(const std::weak_ptr<bool>& alive) {
  auto a = alive.lock();
  return !a || !*a;
}
}  // namespace

HbonePool::HbonePool(asio::any_io_executor executor, Factory factory, Options options, Clock clock)
    : executor_(std::move(executor)),
      factory_(std::move(factory)),
      options_(options),
      clock_(std::move(clock)),
      sweep_timer_(executor_) {}

HbonePool::~HbonePool() {
  try {
    Shutdown();
  } catch (const std::exception& e) {
    // Only allocation can fail here; a destructor must not throw: crash loudly.
    std::fprintf(stderr, "HbonePool::~HbonePool: %s\n", e.what());
    std::abort();
  }
}

void HbonePool::Shutdown() {
  *alive_ = false;
  sweep_timer_.cancel();
  auto entries = std::move(entries_);
  entries_.clear();
  for (auto& [key, e] : entries) {
    for (auto& c : e.conns) c->session->Close("pool shut down");
    for (auto& w : e.waiters) {
      asio::post(executor_, [cb = std::move(w.cb)] {
        cb(absl::UnavailableError("HBONE pool shut down"), nullptr);
      });
    }
  }
}

PoolKey HbonePool::Normalize(PoolKey key) {
  auto& ids = key.destination_identities;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return key;
}

void HbonePool::OpenStream(PoolKey key, std::string authority, std::vector<Header> headers,
                           HboneClientSession::OpenCallback cb) {
  key = Normalize(std::move(key));
  entries_[key].waiters.push_back({std::move(authority), std::move(headers), std::move(cb)});
  Drain(key);
}

void HbonePool::Drain(const PoolKey& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  while (!e.waiters.empty()) {
    std::shared_ptr<Conn> conn;
    for (auto& c : e.conns) {
      // The pool runs on the sessions' executor, so OpenStream below registers the stream
      // synchronously and active_streams() counts it for the next waiter.
      if (c->session->usable() &&
          c->session->active_streams() < options_.max_streams_per_connection &&
          c->session->available_streams() > 0) {
        conn = c;
        break;
      }
    }
    if (!conn) {
      if (!e.connecting) Connect(key);
      return;
    }
    Waiter w = std::move(e.waiters.front());
    e.waiters.pop_front();
    conn->last_active = clock_();
    conn->session->OpenStream(std::move(w.authority), std::move(w.headers), std::move(w.cb));
  }
}

void HbonePool::Connect(const PoolKey& key) {
  entries_[key].connecting = true;
  Log("hbone").debug("pool: connecting to {} as {}", key.destination.ToString(),
                     key.source_identity);
  std::weak_ptr<bool> alive = alive_;
  factory_(key, [this, alive, key](SessionOr session) {
    asio::dispatch(executor_, [this, alive, key, session = std::move(session)]() mutable {
      if (Gone(alive)) {
        if (session.ok() && *session) (*session)->Close("pool destroyed");
        return;
      }
      OnConnected(key, std::move(session));
    });
  });
}

void HbonePool::OnConnected(const PoolKey& key, SessionOr session) {
  Entry& e = entries_[key];
  e.connecting = false;
  if (!session.ok() || !*session) {
    absl::Status s =
        session.ok() ? absl::InternalError("factory returned no session") : session.status();
    Log("hbone").info("pool: connecting to {} failed: {}", key.destination.ToString(), s);
    auto waiters = std::move(e.waiters);
    e.waiters.clear();
    for (auto& w : waiters) {
      asio::post(executor_, [cb = std::move(w.cb), s] {
        cb(absl::UnavailableError(StrCat("HBONE connect: ", s.message())), nullptr);
      });
    }
    if (e.conns.empty()) entries_.erase(key);
    return;
  }
  auto conn = std::make_shared<Conn>();
  conn->session = *session;
  conn->last_active = clock_();
  e.conns.push_back(conn);
  std::weak_ptr<bool> alive = alive_;
  const HboneClientSession* raw = conn->session.get();
  conn->session->SetOnClosed([this, alive, key, raw](const std::string&) {
    if (!Gone(alive)) Evict(key, raw);
  });
  Drain(key);
}

void HbonePool::Evict(const PoolKey& key, const HboneClientSession* session) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto& conns = it->second.conns;
  conns.erase(std::remove_if(conns.begin(), conns.end(),
                             [&](const auto& c) { return c->session.get() == session; }),
              conns.end());
  if (conns.empty() && !it->second.connecting && it->second.waiters.empty()) entries_.erase(it);
}

size_t HbonePool::ReleaseIdle() {
  const auto now = clock_();
  size_t released = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto& conns = it->second.conns;
    for (auto c = conns.begin(); c != conns.end();) {
      auto& session = (*c)->session;
      if (session->closed()) {
        c = conns.erase(c);
        continue;
      }
      if (session->active_streams() > 0) {
        (*c)->last_active = now;
      } else if (now - (*c)->last_active >= options_.idle_timeout) {
        auto s = session;
        c = conns.erase(c);
        s->Close("idle");
        released++;
        continue;
      }
      ++c;
    }
    if (conns.empty() && !it->second.connecting && it->second.waiters.empty()) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return released;
}

void HbonePool::StartIdleSweep(std::chrono::milliseconds period) {
  sweep_period_ = period;
  Sweep();
}

void HbonePool::Sweep() {
  sweep_timer_.expires_after(sweep_period_);
  std::weak_ptr<bool> alive = alive_;
  sweep_timer_.async_wait([this, alive](const asio::error_code& ec) {
    if (ec || Gone(alive)) return;
    ReleaseIdle();
    Sweep();
  });
}

size_t HbonePool::connection_count() const {
  size_t n = 0;
  for (const auto& [k, e] : entries_) n += e.conns.size();
  return n;
}

size_t HbonePool::active_streams() const {
  size_t n = 0;
  for (const auto& [k, e] : entries_) {
    for (const auto& c : e.conns) n += c->session->active_streams();
  }
  return n;
}

size_t HbonePool::connection_count(const PoolKey& key) const {
  auto it = entries_.find(Normalize(key));
  return it == entries_.end() ? 0 : it->second.conns.size();
}

}  // namespace zm::hbone

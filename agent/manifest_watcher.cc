#include "agent/manifest_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::agent {
namespace {

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

}  // namespace

absl::StatusOr<std::unique_ptr<ManifestWatcher>> ManifestWatcher::Start(std::string dir,
                                                                        Callback callback,
                                                                        Options options) {
  Fd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify) return ErrnoError("inotify_init1", dir);
  // The watch comes before the first read, so no change between the two is missed.
  if (::inotify_add_watch(inotify.get(), dir.c_str(), kWatchMask) < 0) {
    return ErrnoError("inotify_add_watch(manifest directory)", dir);
  }
  Fd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) return ErrnoError("eventfd", "manifest watcher wake-up");
  std::unique_ptr<ManifestWatcher> w(new ManifestWatcher(
      std::move(dir), std::move(callback), options, std::move(inotify), std::move(wake)));
  ZM_RETURN_IF_ERROR(w->store_.Reload());
  w->current_ = std::make_shared<const k8s::ManifestSnapshot>(w->store_.Snapshot());
  w->reloads_ = 1;
  // The first call, on the caller's thread: the owner has the initial content when Start()
  // returns. Later calls come from the watcher thread, which does not exist yet.
  w->callback_(w->current_);
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
}

ManifestWatcher::ManifestWatcher(std::string dir, Callback callback, Options options, Fd inotify,
                                 Fd wake)
    : dir_(std::move(dir)),
      callback_(std::move(callback)),
      options_(options),
      inotify_(std::move(inotify)),
      wake_(std::move(wake)),
      store_(dir_) {}

ManifestWatcher::~ManifestWatcher() {
  uint64_t one = 1;
  // An eventfd write only fails when the counter would overflow: it cannot here.
  if (::write(wake_.get(), &one, sizeof(one)) != sizeof(one)) std::abort();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const k8s::ManifestSnapshot> ManifestWatcher::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t ManifestWatcher::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

void ManifestWatcher::ReloadAndNotify() {
  if (absl::Status s = store_.Reload(); !s.ok()) {
    Log("k8s").error("manifest directory {}: {} (keeping the previous content)", dir_,
                     std::string(s.message()));
    return;
  }
  auto snap = std::make_shared<const k8s::ManifestSnapshot>(store_.Snapshot());
  Log("k8s").info("manifest directory {}: {} namespaces, {} pods, {} errors", dir_,
                  snap->namespaces.size(), snap->pods.size(), snap->errors.size());
  for (const std::string& e : snap->errors) Log("k8s").warn("{}", e);
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = snap;
    ++reloads_;
  }
  callback_(std::move(snap));
}

void ManifestWatcher::Run() {
  using Clock = std::chrono::steady_clock;

  bool watching = true;
  bool pending = false;
  Clock::time_point first_event, last_event;
  alignas(inotify_event) char buf[16 * 1024];
  while (true) {
    int timeout_ms = -1;
    if (pending) {
      Clock::time_point due = std::min(last_event + options_.quiet, first_event + options_.max_delay);
      auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<int64_t>(left, 0));
    }
    pollfd fds[2] = {{.fd = wake_.get(), .events = POLLIN},
                     {.fd = watching ? inotify_.get() : -1, .events = POLLIN}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      // Only EFAULT/EINVAL/ENOMEM: a bug or an exhausted machine, not a state to limp on in.
      Log("k8s").critical("{}", std::string(ErrnoError("poll", "manifest watcher").message()));
      std::abort();
    }
    if (n > 0 && (fds[0].revents & POLLIN)) return;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      while (true) {
        ssize_t len = ::read(inotify_.get(), buf, sizeof(buf));
        if (len <= 0) break;  // EAGAIN: drained
        for (char* p = buf; p < buf + len;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
            if (watching) {
              Log("k8s").error("manifest directory {} was removed or moved: no more reloads "
                               "(keeping the last content)", dir_);
            }
            watching = false;
            continue;
          }
          // IN_Q_OVERFLOW included: every reload rereads the whole directory anyway.
          Clock::time_point now = Clock::now();
          if (!pending) first_event = now;
          last_event = now;
          pending = true;
        }
      }
    }
    if (pending) {
      Clock::time_point now = Clock::now();
      if (now >= last_event + options_.quiet || now >= first_event + options_.max_delay) {
        pending = false;
        ReloadAndNotify();
      }
    }
  }
}

}  // namespace zm::agent

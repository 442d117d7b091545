#include "common/k8s/dir_watcher.h"

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

namespace zm::k8s {
namespace {

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

}  // namespace

absl::StatusOr<std::unique_ptr<DirWatcher>> DirWatcher::Watch(std::string dir, std::string what,
                                                              Options options) {
  Fd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify) return ErrnoError("inotify_init1", dir);
  if (::inotify_add_watch(inotify.get(), dir.c_str(), kWatchMask) < 0) {
    return ErrnoError("inotify_add_watch(" + what + ")", dir);
  }
  Fd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) return ErrnoError("eventfd", what + " watcher wake-up");
  return std::unique_ptr<DirWatcher>(new DirWatcher(std::move(dir), std::move(what), options,
                                                    std::move(inotify), std::move(wake)));
}

DirWatcher::DirWatcher(std::string dir, std::string what, Options options, Fd inotify, Fd wake)
    : dir_(std::move(dir)),
      what_(std::move(what)),
      options_(options),
      inotify_(std::move(inotify)),
      wake_(std::move(wake)) {}

void DirWatcher::Start(std::function<void()> on_change) {
  if (thread_.joinable()) {
    Log("agent").critical("{} watcher started twice", what_);
    std::abort();
  }
  on_change_ = std::move(on_change);
  thread_ = std::thread([this] { Run(); });
}

DirWatcher::~DirWatcher() {
  uint64_t one = 1;
  // An eventfd write only fails when the counter would overflow: it cannot here.
  if (::write(wake_.get(), &one, sizeof(one)) != sizeof(one)) std::abort();
  if (thread_.joinable()) thread_.join();
}

void DirWatcher::Run() {
  using Clock = std::chrono::steady_clock;

  bool watching = true;
  bool pending = false;
  Clock::time_point first_event, last_event;
  alignas(inotify_event) char buf[16 * 1024];
  while (true) {
    int timeout_ms = -1;
    if (pending) {
      Clock::time_point due =
          std::min(last_event + options_.quiet, first_event + options_.max_delay);
      auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<int64_t>(left, 0));
    }
    pollfd fds[2] = {{.fd = wake_.get(), .events = POLLIN},
                     {.fd = watching ? inotify_.get() : -1, .events = POLLIN}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      // Only EFAULT/EINVAL/ENOMEM: a bug or an exhausted machine, not a state to limp on in.
      Log("agent").critical("{}", ErrnoError("poll", what_ + " watcher").message());
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
              Log("agent").error(
                  "{} {} was removed or moved: no more reloads (keeping the "
                  "last content)",
                  what_, dir_);
            }
            watching = false;
            continue;
          }
          // IN_Q_OVERFLOW included: every callback rereads the whole directory anyway.
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
        on_change_();
      }
    }
  }
}

}  // namespace zm::k8s

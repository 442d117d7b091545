#include "common/base/ready_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/file.h"
#include "common/base/log.h"

namespace zm {

ReadyFile::ReadyFile(std::string path) : path_(std::move(path)) {
  if (!path_.empty()) Set(false);
}

ReadyFile::~ReadyFile() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (follower_.joinable()) follower_.join();
  if (!path_.empty()) ::unlink(path_.c_str());
}

void ReadyFile::Set(bool ready) {
  std::lock_guard lock(mu_);
  if (path_.empty() || state_ == static_cast<int>(ready)) return;
  state_ = static_cast<int>(ready);
  if (ready) {
    absl::Status st = WriteFileAtomically(path_, "ready\n", 0644);
    if (!st.ok()) Log("ready").error("readiness file: {}", st.message());
  } else if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    Log("ready").error("readiness file {}: unlink: {}", path_, std::strerror(errno));
  }
}

void ReadyFile::Follow(std::function<bool()> ready, std::chrono::milliseconds every) {
  if (path_.empty() || follower_.joinable()) return;
  follower_ = std::thread([this, ready = std::move(ready), every] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      Set(ready());
      lock.lock();
      cv_.wait_for(lock, every, [this] { return stopping_; });
    }
  });
}

}  // namespace zm

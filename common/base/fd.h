#pragma once
// A move-only owner of a file descriptor: the only place a raw close() appears.

#include <utility>

namespace zm {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);
  // dup(2) with CLOEXEC; an invalid Fd when it fails (errno set).
  Fd Dup() const;

 private:
  int fd_ = -1;
};

}  // namespace zm

#include "common/base/fd.h"

#include <fcntl.h>
#include <unistd.h>

namespace zm {

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Fd Fd::Dup() const {
  if (fd_ < 0) return Fd();
  return Fd(::fcntl(fd_, F_DUPFD_CLOEXEC, 0));
}

}  // namespace zm

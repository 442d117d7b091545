#include "common/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/base/fd.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm {

absl::Status WriteFileAtomically(const std::string& path, std::string_view content, int mode) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::string tmp = StrCat(dir, "/.", base, ".", ::getpid(), ".tmp");
  absl::Status st = [&]() -> absl::Status {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) return ErrnoError("open", tmp);
    std::string_view left = content;
    while (!left.empty()) {
      ssize_t n = ::write(fd.get(), left.data(), left.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("write", tmp);
      left.remove_prefix(static_cast<size_t>(n));
    }
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return ErrnoError("fchmod", tmp);
    if (::fsync(fd.get()) != 0) return ErrnoError("fsync", tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename", path);
    return absl::OkStatus();
  }();
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace zm

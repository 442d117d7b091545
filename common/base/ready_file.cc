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
  if (!path_.empty()) ::unlink(path_.c_str());
}

void ReadyFile::Set(bool ready) {
  if (path_.empty() || state_ == static_cast<int>(ready)) return;
  state_ = static_cast<int>(ready);
  if (ready) {
    absl::Status st = WriteFileAtomically(path_, "ready\n", 0644);
    if (!st.ok()) Log("ready").error("readiness file: {}", st.message());
  } else if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    Log("ready").error("readiness file {}: unlink: {}", path_, std::strerror(errno));
  }
}

}  // namespace zm

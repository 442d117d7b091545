#pragma once
// Writing files that other processes read while we write them (the CNI configuration a container
// runtime reads, the agent's state).

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace zm {

// Replaces `path` with `content` atomically: a temporary file in the same directory (a dot name
// ending in .tmp, which no reader of *.conf / *.json takes for its own), fsync, then rename.
// `mode` is set whatever the umask. Errors name the call and the file.
absl::Status WriteFileAtomically(const std::string& path, std::string_view content, int mode);

}  // namespace zm

#pragma once
// Errors: absl::Status / absl::StatusOr everywhere something can fail (CONVENTIONS 1).

#include <cerrno>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zm {

// A Status for a failed system call, naming the call and the object it acted on:
// "bpf_map_update_elem(zm_netns): E2BIG (Argument list too long)".
absl::Status ErrnoError(std::string_view call, std::string_view object, int err = errno);

}  // namespace zm

#define ZM_STATUS_CONCAT_INNER(a, b) a##b
#define ZM_STATUS_CONCAT(a, b) ZM_STATUS_CONCAT_INNER(a, b)

#define ZM_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status zm_status_ = (expr);           \
    if (!zm_status_.ok()) return zm_status_;      \
  } while (0)

#define ZM_ASSIGN_OR_RETURN(lhs, expr) \
  ZM_ASSIGN_OR_RETURN_IMPL(ZM_STATUS_CONCAT(zm_statusor_, __LINE__), lhs, expr)

#define ZM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

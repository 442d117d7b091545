#include "common/base/status.h"

#include <cstring>

#include "common/base/strings.h"

namespace zm {

absl::Status ErrnoError(std::string_view call, std::string_view object, int err) {
  const char* name = strerrorname_np(err);
  std::string msg = StrCat(call, "(", object, "): ", name ? name : "E?", " (",
                                 std::strerror(err), ")");
  return absl::Status(absl::ErrnoToStatusCode(err), msg);
}

}  // namespace zm

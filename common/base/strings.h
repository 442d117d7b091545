#pragma once
// String building. Debian's Abseil is built with its own absl::string_view, so absl::StrCat
// does not take std::string_view; this one takes anything fmt can format.

#include <fmt/format.h>

#include <iterator>
#include <string>

namespace zm {

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (fmt::format_to(std::back_inserter(out), "{}", args), ...);
  return out;
}

}  // namespace zm

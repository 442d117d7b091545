#include "common/jwt/claims.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_split.h"
#include "common/base/strings.h"

namespace zm::jwt {
namespace {

const nlohmann::json* Descend(const nlohmann::json& claims, const std::vector<std::string>& path) {
  const nlohmann::json* at = &claims;
  for (const auto& name : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(name);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

bool IsHeaderSafe(std::string_view v) {
  return std::none_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseClaimPath(std::string_view brackets) {
  std::vector<std::string> out;
  std::string_view rest = brackets;
  while (!rest.empty()) {
    size_t close = rest.find(']');
    if (rest.front() != '[' || close == std::string_view::npos || close == 1) {
      return absl::InvalidArgumentError(
          StrCat("claim path \"", brackets, "\" is not of the form [name][name]..."));
    }
    std::string_view name = rest.substr(1, close - 1);
    if (name.find('[') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("claim path \"", brackets, "\" has '[' inside a name"));
    }
    out.emplace_back(name);
    rest.remove_prefix(close + 1);
  }
  if (out.empty()) return absl::InvalidArgumentError("empty claim path");
  return out;
}

std::optional<std::vector<std::string>> ClaimValues(
    const nlohmann::json& claims, const std::vector<std::string>& path,
    const std::vector<std::string>& space_delimited_claims) {
  if (path.empty()) return std::nullopt;
  const nlohmann::json* v = Descend(claims, path);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    const std::string& name = path.front();
    bool split = path.size() == 1 &&
                 (name == "scope" || name == "permission" ||
                  std::find(space_delimited_claims.begin(), space_delimited_claims.end(), name) !=
                      space_delimited_claims.end());
    if (!split) return std::vector<std::string>{s};
    return std::vector<std::string>(absl::StrSplit(absl::string_view(s.data(), s.size()),
                                                   absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty()));
  }
  if (v->is_array()) {
    std::vector<std::string> out;
    for (const auto& e : *v) {
      if (e.is_string()) out.push_back(e.get<std::string>());
    }
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> ClaimHeaderValue(const nlohmann::json& claims, std::string_view claim) {
  std::vector<std::string> path =
      absl::StrSplit(absl::string_view(claim.data(), claim.size()), '.');
  const nlohmann::json* v = Descend(claims, path);
  if (v == nullptr) return std::nullopt;
  switch (v->type()) {
    case nlohmann::json::value_t::string: {
      const std::string& s = v->get_ref<const std::string&>();
      if (!IsHeaderSafe(s)) return std::nullopt;
      return s;
    }
    case nlohmann::json::value_t::boolean:
      return v->get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer:
      return std::to_string(v->get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return std::to_string(v->get<uint64_t>());
    case nlohmann::json::value_t::number_float: {
      double d = v->get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
        return std::to_string(static_cast<int64_t>(d));
      }
      return fmt::format("{}", d);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace zm::jwt

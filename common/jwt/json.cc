#include "common/jwt/json.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/base/strings.h"

namespace zm::jwt {

absl::StatusOr<nlohmann::json> ParseJson(std::string_view text) {
  // Member names seen so far in the object open at each depth. Objects at one depth never
  // interleave, so an object's set is cleared when it starts. The callback never discards
  // (that would skip the matching end events); problems are remembered and reported after.
  std::vector<absl::flat_hash_set<std::string>> names;
  std::string problem;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event,
                      nlohmann::json& parsed) -> bool {
    using Event = nlohmann::json::parse_event_t;
    if (!problem.empty()) return true;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (depth >= kMaxJsonDepth) {
          problem = StrCat("nested deeper than ", kMaxJsonDepth, " levels");
        } else if (event == Event::object_start) {
          if (names.size() <= static_cast<size_t>(depth)) names.resize(depth + 1);
          names[depth].clear();
        }
        break;
      case Event::key: {
        // A key is reported one level below the object holding it.
        const std::string& name = parsed.get_ref<const std::string&>();
        if (!names[depth - 1].insert(name).second) {
          problem = StrCat("duplicate member name \"", name, "\"");
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), callback,
                                               /*allow_exceptions=*/false,
                                               /*ignore_comments=*/false);
  if (value.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!problem.empty()) return absl::InvalidArgumentError(problem);
  return value;
}

}  // namespace zm::jwt

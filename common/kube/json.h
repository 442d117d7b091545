#pragma once
// Reading API objects without exceptions: nlohmann's `at()` throws and `operator[]` on a
// const object asserts, so every lookup here checks the type first.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace zm::kube {

// `j[key]` when `j` is an object holding `key`, else nullptr.
inline const nlohmann::json* Field(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// `j[key]` as a string; empty when absent or not a string.
inline std::string StringField(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* f = Field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}

// `j.metadata[key]` as a string ("name", "namespace", "uid", "resourceVersion").
inline std::string MetaField(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* meta = Field(j, "metadata");
  return meta != nullptr ? StringField(*meta, key) : std::string();
}

// Compact JSON text; never throws (invalid UTF-8, which parsed input cannot hold, is replaced).
inline std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace zm::kube

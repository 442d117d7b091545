#pragma once
// The YAML field readers every manifest kind shares (common/k8s internal): typed field access
// that reports a problem as an error naming the field instead of throwing, Kubernetes name
// syntax, and the object context that turns errors into
// `file.yaml: document 2 (Kind ns/name): field: message`.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/strings.h"
#include "common/k8s/manifest.h"

namespace zm::k8s::yaml {

// Where an object sits, for sources and error texts. Document 0 is a single object that
// is not part of a file (ParseObject): its source is `file` as given.
class ObjectContext {
 public:
  ObjectContext(std::string_view file, int document, int item)
      : file_(file), document_(document), item_(item) {}

  void Name(std::string_view kind, std::string_view display) {
    object_ = StrCat(kind, " ", display);
  }
  void Error(std::string_view field, std::string_view message) {
    std::string where = file_;
    if (document_ > 0) where += StrCat(": document ", document_);
    if (item_ >= 0) where += StrCat(", items[", item_, "]");
    if (!object_.empty()) where += StrCat(" (", object_, ")");
    errors_.push_back(StrCat(where, ": ", field, ": ", message));
  }
  std::string Source() const {
    if (document_ == 0) return file_;
    std::string s = StrCat(file_, ":doc", document_);
    if (item_ >= 0) s += StrCat("/items[", item_, "]");
    return s;
  }
  bool failed() const { return !errors_.empty(); }
  std::vector<std::string>& errors() { return errors_; }

 private:
  std::string file_;
  int document_;
  int item_;
  std::string object_;
  std::vector<std::string> errors_;
};

struct Metadata {
  std::string name;
  std::string namespace_name;
  std::string uid;
  StringMap labels;
  StringMap annotations;
};

constexpr std::string_view kBadPortName =
    "not a valid port name (IANA service name: at most 15 lowercase alphanumerics and '-', at "
    "least one letter): ";

bool IsLowerAlnum(char c);

bool IsAlnum(char c);

// RFC 1123 label: namespaces.
bool IsDnsLabel(std::string_view s);

// RFC 1123 subdomain: pods, service accounts, nodes.
bool IsDnsSubdomain(std::string_view s);

// The name part of a label key, or a label value when non-empty.
bool IsLabelName(std::string_view s);

// "[prefix/]name", the syntax of label and annotation keys.
bool IsQualifiedName(std::string_view s);

std::string Quote(std::string_view s);

// RFC 1035 label: Service names.
bool IsDns1035Label(std::string_view s);

// IANA_SVC_NAME (RFC 6335): container port names and named targetPorts. At most 15 lowercase
// alphanumerics and '-', at least one letter, no '-' at either end and no "--".
bool IsIanaSvcName(std::string_view s);

// A plain decimal number (no sign, no spaces); nullopt otherwise or beyond `max`.
std::optional<uint64_t> ParseDecimal(std::string_view s, uint64_t max);

// A port 1-65535 written as a decimal number.
std::optional<uint16_t> ParsePort(std::string_view s);

// A quoted YAML scalar ('80' or "80", and every JSON string) is a string even when it reads
// like a number: Kubernetes' IntOrString makes `targetPort: "8080"` a port *name*.
bool IsQuoted(const YAML::Node& node);

// RFC 3339 as Kubernetes writes metav1.Time ("2026-07-01T12:00:00Z", also with fractional
// seconds and a numeric offset). Nanoseconds since the epoch, nullopt when malformed.
std::optional<int64_t> ParseRfc3339(std::string_view s);

// A scalar field as a string. Absent or null: `fallback`. Anything else: an error.
std::string ScalarField(const YAML::Node& parent, const char* key, std::string_view field,
                        ObjectContext& ctx, std::string_view fallback = "");

// A mapping field (absent or null: an empty node); anything else is an error.
YAML::Node MapField(const YAML::Node& parent, const char* key, std::string_view field,
                    ObjectContext& ctx);

// A map of strings (labels, annotations, selectors) already looked up as `map`; `field` names it
// in errors. Label keys and, with `is_labels`, label values are validated.
StringMap ReadStringMap(const YAML::Node& map, std::string_view field, bool is_labels,
                        ObjectContext& ctx);

StringMap StringMapField(const YAML::Node& metadata, const char* key, bool is_labels,
                         ObjectContext& ctx);

// Every key of `map` must be one of `known`; `prefix` ("spec.mtls") names the map in errors.
void CheckKnownFields(const YAML::Node& map, std::string_view prefix,
                      std::initializer_list<std::string_view> known, ObjectContext& ctx);

// Reads metadata; names the object in `ctx` as soon as its name is known.
Metadata ReadMetadata(const YAML::Node& doc, std::string_view kind, bool namespaced,
                      ObjectContext& ctx);

// A list field: absent or null is an empty (undefined) node, anything but a list an error.
YAML::Node ListField(const YAML::Node& parent, const char* key, std::string_view field,
                     ObjectContext& ctx);

}  // namespace zm::k8s::yaml

#include "bpf/reasons.h"

#include "zmesh/abi.h"

namespace zm::bpf {

std::string_view ReasonName(uint32_t reason) {
  switch (reason) {
#define ZM_REASON_CASE(name, words) \
  case ZM_R_##name:                 \
    return words;
    ZM_REASONS(ZM_REASON_CASE)
#undef ZM_REASON_CASE
    default:
      return "unknown";
  }
}

}  // namespace zm::bpf

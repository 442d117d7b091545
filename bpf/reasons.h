#pragma once
// Names of the reasons of zmesh/abi.h (ZM_REASONS): metric labels, log words, CLI columns.

#include <cstdint>
#include <string_view>

namespace zm::bpf {

// "out-redirected", ...; "unknown" for a value outside the enum (a newer object's reason).
std::string_view ReasonName(uint32_t reason);

}  // namespace zm::bpf

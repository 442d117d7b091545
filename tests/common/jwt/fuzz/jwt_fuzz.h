#pragma once
// The JWT fuzz target's core, shared by the libFuzzer binary (clang, ZMESH_FUZZ=ON) and the
// corpus replay test (any compiler).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace zm::jwt::fuzz {

// The time the fuzz target verifies at (seconds since the epoch).
inline constexpr int64_t kFuzzNow = 1'800'000'000;
// The audience the fuzz rule requires.
inline constexpr char kFuzzAudience[] = "https://fuzz.example.com/";

// Parses `token` and verifies it against the fixed key set (one key of every kind) at kFuzzNow
// with audience kFuzzAudience and any issuer; then runs the same bytes through the
// Authenticator from an Authorization header and a query parameter. Aborts when an invariant
// breaks (a failure without a JwtFailure, a 401/403 mix-up, an accepted token whose payload
// segment does not decode to its claims, the Authenticator disagreeing with the verifier).
absl::Status VerifyForFuzz(std::string_view token);

}  // namespace zm::jwt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

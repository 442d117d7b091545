#pragma once
// The HTTP engine's fuzz target core, shared by the libFuzzer binary (clang, ZMESH_FUZZ=ON) and
// the corpus replay test (any compiler).
//
// Input: byte 0 = flags (kFuzz*), bytes 1-2 = big-endian length L of the downstream part, then
// L bytes the client sends, then the bytes the upstream answers with (whatever it is asked).
// Shorter inputs are all downstream bytes with no flags.

#include <cstddef>
#include <cstdint>

namespace zm::waypoint::fuzz {

inline constexpr uint8_t kFuzzDeny = 1;          // the filter denies every request (403)
inline constexpr uint8_t kFuzzInlineFilter = 2;  // the filter answers inline, not posted
inline constexpr uint8_t kFuzzOpenFails = 4;     // opening the upstream fails (503)
inline constexpr uint8_t kFuzzTrickle = 8;       // client bytes arrive 7 at a time
inline constexpr uint8_t kFuzzRewrite = 16;      // the filter rewrites the path, adds a header

struct FuzzResult {
  int requests = 0;         // RequestLog entries
  int status_2xx = 0;       // of which answered 2xx in full
  int status_4xx = 0;       // of which answered 4xx (local or upstream)
  size_t client_bytes = 0;  // bytes the client received
};

// Serves the input as one downstream connection (in-process pipes, one io_context polled until
// quiet), then closes everything. Aborts when an invariant breaks (a log with a status outside
// 100-599, a 2xx while the filter denies everything).
FuzzResult RunFuzzCase(const uint8_t* data, size_t size);

}  // namespace zm::waypoint::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

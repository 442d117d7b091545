// Corpus replay: every seed through the fuzz target, so the corpus runs in every `make test`
// build (g++ has no libFuzzer). Seeds named valid-* must verify; every other seed must fail.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/common/jwt/fuzz/jwt_fuzz.h"

namespace zm::jwt::fuzz {
namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(JwtFuzzReplay, EverySeedGetsItsVerdict) {
  const std::filesystem::path dir = JWT_FUZZ_CORPUS_DIR;
  size_t seeds = 0, valid = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    std::string data = Read(entry.path());
    ++seeds;
    absl::Status status = VerifyForFuzz(data);
    if (name.starts_with("valid-")) {
      ++valid;
      EXPECT_TRUE(status.ok()) << name << ": " << status;
    } else {
      EXPECT_FALSE(status.ok()) << name << " verified";
    }
    // And through the exact entry point libFuzzer calls.
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
              0);
  }
  EXPECT_GE(seeds, 12u) << "corpus " << dir << " is missing or thin";
  EXPECT_EQ(valid, 13u) << "one valid seed per algorithm";
}

}  // namespace
}  // namespace zm::jwt::fuzz

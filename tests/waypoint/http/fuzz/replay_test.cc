// Corpus replay: every seed through the fuzz target, so the corpus runs in every build (g++ has
// no libFuzzer). Seeds named ok-* must get at least one 2xx; bad-* none; deny-* a 4xx and no
// 2xx.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/waypoint/http/fuzz/http_fuzz.h"

namespace zm::waypoint::fuzz {
namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(HttpFuzzReplay, EverySeedGetsItsVerdict) {
  const std::filesystem::path dir =
      std::getenv("HTTP_FUZZ_DIR") ? std::getenv("HTTP_FUZZ_DIR") : HTTP_FUZZ_CORPUS_DIR;
  size_t seeds = 0, ok = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    std::string data = Read(entry.path());
    ++seeds;
    FuzzResult r = RunFuzzCase(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    if (name.starts_with("ok-")) {
      ++ok;
      EXPECT_GE(r.status_2xx, 1) << name;
    } else if (name.starts_with("bad-")) {
      EXPECT_EQ(r.status_2xx, 0) << name;
      EXPECT_GT(r.client_bytes, 0u) << name << ": a bad request still gets an answer";
    } else if (name.starts_with("deny-")) {
      EXPECT_EQ(r.status_2xx, 0) << name;
      EXPECT_GE(r.status_4xx, 1) << name;
    }
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
              0);
  }
  EXPECT_GE(seeds, 12u) << "corpus " << dir << " is missing or thin";
  EXPECT_GE(ok, 6u);
}

}  // namespace
}  // namespace zm::waypoint::fuzz

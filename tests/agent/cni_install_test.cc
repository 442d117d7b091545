// Installing zmesh-cni into temporary CNI directories: chained last, the other plugins and fields
// kept, idempotent (a second install writes nothing), a single-plugin .conf becomes a .conflist,
// an unsupported cniVersion is refused untouched, and uninstall takes exactly our part away.
#include "agent/cni_install.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/testutil/temp_dir.h"

namespace zm::agent {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const char kBridge[] = R"({
  "cniVersion": "1.0.0",
  "name": "lab",
  "disableCheck": false,
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.22.0.0/16"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
})";

class CniInstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(bin_);
    std::filesystem::create_directories(conf_);
    plugin_ = dir_.Write("zmesh-cni-build", "#!/bin/sh\necho plugin v1\n");
  }
  CniInstallOptions Options() {
    return {.bin_dir = bin_,
            .conf_dir = conf_,
            .plugin_binary = plugin_,
            .agent_socket = "/run/zmesh/n1/cni.sock",
            .timeout_seconds = 9};
  }
  json Read(const std::string& path) { return json::parse(std::ifstream(path)); }
  std::vector<std::string> Files(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  testutil::TempDir dir_{"zmesh-cni-install"};
  std::string bin_ = dir_.File("bin");
  std::string conf_ = dir_.File("net.d");
  std::string plugin_;
};

TEST_F(CniInstallTest, ChainsLastKeepsTheRestAndIsIdempotent) {
  const std::string list = conf_ + "/10-lab.conflist";
  std::ofstream(list) << kBridge;
  std::ofstream(conf_ + "/20-other.conflist")
      << R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"ptp"}]})";

  auto r = InstallCni(Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->conf_file, list);  // the first by name: what the runtime uses
  EXPECT_TRUE(r->binary_written);
  EXPECT_TRUE(r->conf_written);
  json got = Read(list);
  json want = json::parse(kBridge);
  want["plugins"].push_back(
      {{"type", "zmesh-cni"}, {"agent_socket", "/run/zmesh/n1/cni.sock"}, {"timeout_seconds", 9}});
  EXPECT_EQ(got, want);
  // The other network is not ours to touch.
  EXPECT_EQ(Read(conf_ + "/20-other.conflist")["plugins"].size(), 1u);
  // The binary: same bytes, executable.
  std::ifstream installed(bin_ + "/zmesh-cni");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(installed), {}),
            "#!/bin/sh\necho plugin v1\n");
  struct stat st {};
  ASSERT_EQ(stat((bin_ + "/zmesh-cni").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);

  // Again: nothing is written (same inodes), nothing is duplicated, no temporary file is left.
  struct stat before_conf {
  }, before_bin{};
  stat(list.c_str(), &before_conf);
  stat((bin_ + "/zmesh-cni").c_str(), &before_bin);
  auto again = InstallCni(Options());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->binary_written);
  EXPECT_FALSE(again->conf_written);
  struct stat after_conf {
  }, after_bin{};
  stat(list.c_str(), &after_conf);
  stat((bin_ + "/zmesh-cni").c_str(), &after_bin);
  EXPECT_EQ(before_conf.st_ino, after_conf.st_ino);
  EXPECT_EQ(before_bin.st_ino, after_bin.st_ino);
  EXPECT_EQ(Read(list), want);
  EXPECT_EQ(Files(conf_), (std::vector<std::string>{"10-lab.conflist", "20-other.conflist"}));
  EXPECT_EQ(Files(bin_), (std::vector<std::string>{"zmesh-cni"}));
}

TEST_F(CniInstallTest, ANewerBinaryOrChangedOptionsAreRewrittenInPlace) {
  const std::string list = conf_ + "/10-lab.conflist";
  json with_old = json::parse(kBridge);
  // An older entry of ours in the middle (someone appended after it): it moves to the end.
  with_old["plugins"].insert(with_old["plugins"].begin() + 1,
                             json{{"type", "zmesh-cni"}, {"agent_socket", "/old.sock"}});
  std::ofstream(list) << with_old.dump();
  ASSERT_TRUE(InstallCni(Options()).ok());
  json got = Read(list);
  ASSERT_EQ(got["plugins"].size(), 3u);
  EXPECT_EQ(got["plugins"][1]["type"], "portmap");
  EXPECT_EQ(got["plugins"][2]["agent_socket"], "/run/zmesh/n1/cni.sock");

  std::ofstream(plugin_, std::ios::trunc) << "#!/bin/sh\necho plugin v2\n";
  auto r = InstallCni(Options());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->binary_written);
  EXPECT_FALSE(r->conf_written);
  std::ifstream installed(bin_ + "/zmesh-cni");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(installed), {}),
            "#!/bin/sh\necho plugin v2\n");
}

TEST_F(CniInstallTest, ASinglePluginConfBecomesAConflist) {
  std::ofstream(conf_ + "/05-flat.conf")
      << R"({"cniVersion":"0.4.0","name":"flat","type":"bridge","bridge":"br0","ipam":{"type":"host-local"}})";
  auto r = InstallCni(Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->conf_file, conf_ + "/05-flat.conflist");
  EXPECT_EQ(Files(conf_), (std::vector<std::string>{"05-flat.conflist"}));
  json got = Read(r->conf_file);
  EXPECT_EQ(got["cniVersion"], "0.4.0");
  EXPECT_EQ(got["name"], "flat");
  ASSERT_EQ(got["plugins"].size(), 2u);
  EXPECT_EQ(got["plugins"][0],
            json::parse(R"({"type":"bridge","bridge":"br0","ipam":{"type":"host-local"}})"));
  EXPECT_EQ(got["plugins"][1]["type"], "zmesh-cni");
  auto again = InstallCni(Options());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->conf_written);
}

TEST_F(CniInstallTest, NoConfigurationYetThenOne) {
  auto r = InstallCni(Options());
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(conf_));
  std::ofstream(conf_ + "/10-lab.conflist") << kBridge;
  EXPECT_TRUE(InstallCni(Options()).ok());
}

TEST_F(CniInstallTest, AVersionThePluginDoesNotSpeakIsRefusedAndLeftAlone) {
  const std::string list = conf_ + "/10-lab.conflist";
  json v11 = json::parse(kBridge);
  v11["cniVersion"] = "1.1.0";
  std::ofstream(list) << v11.dump();
  auto r = InstallCni(Options());
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("10-lab.conflist: cniVersion \"1.1.0\""));
  EXPECT_EQ(Read(list), v11);
}

TEST_F(CniInstallTest, UninstallRemovesOnlyOurs) {
  const std::string list = conf_ + "/10-lab.conflist";
  std::ofstream(list) << kBridge;
  ASSERT_TRUE(InstallCni(Options()).ok());
  ASSERT_TRUE(UninstallCni(bin_, conf_).ok());
  EXPECT_EQ(Read(list), json::parse(kBridge));
  EXPECT_FALSE(std::filesystem::exists(bin_ + "/zmesh-cni"));
  EXPECT_TRUE(UninstallCni(bin_, conf_).ok());  // idempotent
  EXPECT_EQ(Read(list), json::parse(kBridge));
}

TEST(ChainPlugin, Pure) {
  json plugin = {{"type", "zmesh-cni"}};
  EXPECT_FALSE(ChainPlugin(json::parse("[]"), plugin, "f").ok());
  EXPECT_FALSE(
      ChainPlugin(json::parse(R"({"cniVersion":"1.0.0","plugins":[]})"), plugin, "f").ok());
  EXPECT_FALSE(ChainPlugin(json::parse(R"({"cniVersion":"1.0.0","name":"x"})"), plugin, "f").ok());
  // Only ours: nothing to chain after.
  EXPECT_FALSE(
      ChainPlugin(json::parse(R"({"cniVersion":"1.0.0","plugins":[{"type":"zmesh-cni"}]})"), plugin,
                  "f")
          .ok());
  json u =
      UnchainPlugin(json::parse(R"({"plugins":[{"type":"a"},{"type":"zmesh-cni"},{"type":"b"}]})"));
  EXPECT_EQ(u, json::parse(R"({"plugins":[{"type":"a"},{"type":"b"}]})"));
}

}  // namespace
}  // namespace zm::agent

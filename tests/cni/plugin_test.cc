// zmesh-cni as a runtime calls it: the CNI_* environment and the network configuration with the
// previous plugin's result on stdin. The agent is faked (the seam is the call), so these pin down
// the CNI contract: VERSION, result passthrough, the request the agent gets, error objects with
// their codes, DEL that never blocks a pod's deletion, CHECK.
#include "cni/plugin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace zm::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// What bridge + host-local hand on (CNI 1.0.0 result).
const char kPrevResult[] =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:01"},
{"name":"veth1","mac":"aa:bb:cc:dd:ee:02"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:03","sandbox":"/var/run/netns/p1"}],
"ips":[{"interface":2,"address":"10.22.0.7/16","gateway":"10.22.0.1"},{"interface":2,"address":"fd00::7/64"}],
"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]}})";

std::string Config(
    const std::string& version = "1.0.0", bool prev = true,
    const std::string& extra = R"(,"agent_socket":"/run/zmesh/n1/cni.sock","timeout_seconds":7)") {
  std::string c =
      R"({"cniVersion":")" + version + R"(","name":"k8s-pod-network","type":"zmesh-cni")" + extra;
  if (prev) c += std::string(R"(,"prevResult":)") + kPrevResult;
  return c + "}";
}

Environment Env(const std::string& command) {
  return {.command = command,
          .container_id = "c0ffee",
          .netns = "/var/run/netns/p1",
          .ifname = "eth0",
          .args =
              "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0;"
              "K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=4f1c",
          .path = "/opt/cni/bin"};
}

// A scripted agent that records what it was asked.
struct FakeAgent {
  absl::StatusOr<PodReply> answer = PodReply{.ok = true, .state = "enrolled"};
  std::vector<PodRequest> requests;
  std::string socket;
  std::chrono::milliseconds timeout{0};
  AgentCall Call() {
    return [this](const std::string& s, const PodRequest& r, std::chrono::milliseconds t) {
      socket = s;
      timeout = t;
      requests.push_back(r);
      return answer;
    };
  }
};

json Stdout(const Outcome& o) { return json::parse(o.stdout_text); }

TEST(CniPlugin, VersionListsTheSupportedVersions) {
  FakeAgent agent;
  Outcome o = Execute(Env("VERSION"), R"({"cniVersion":"1.0.0"})", agent.Call());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(Stdout(o),
            json::parse(
                R"({"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]})"));
  EXPECT_TRUE(agent.requests.empty());
}

TEST(CniPlugin, AddAsksTheAgentAndPassesThePreviousResultThrough) {
  FakeAgent agent;
  Outcome o = Execute(Env("ADD"), Config(), agent.Call());
  ASSERT_EQ(o.exit_code, 0) << o.stdout_text;
  EXPECT_EQ(Stdout(o), json::parse(kPrevResult));  // unchanged
  ASSERT_EQ(agent.requests.size(), 1u);
  const PodRequest& r = agent.requests[0];
  EXPECT_EQ(r.command, Command::kAdd);
  EXPECT_EQ(r.container_id, "c0ffee");
  EXPECT_EQ(r.netns, "/var/run/netns/p1");
  EXPECT_EQ(r.ifname, "eth0");
  EXPECT_EQ(r.key(), "demo/web-0");
  EXPECT_EQ(r.pod_uid, "4f1c");
  EXPECT_EQ(r.ips, (std::vector<std::string>{"10.22.0.7", "fd00::7"}));
  EXPECT_EQ(r.timeout_ms, 7000);
  EXPECT_EQ(agent.socket, "/run/zmesh/n1/cni.sock");
  // The plugin waits a little longer than the agent, whose own timeout answer says why.
  EXPECT_GT(agent.timeout, std::chrono::milliseconds(7000));
}

TEST(CniPlugin, OlderVersionsPassThroughTooAndAMissingVersionIsFilledIn) {
  FakeAgent agent;
  json prev = json::parse(kPrevResult);
  prev.erase("cniVersion");
  std::string conf =
      R"({"cniVersion":"0.4.0","name":"n","type":"zmesh-cni","agent_socket":"/s","prevResult":)" +
      prev.dump() + "}";
  Outcome o = Execute(Env("ADD"), conf, agent.Call());
  ASSERT_EQ(o.exit_code, 0) << o.stdout_text;
  prev["cniVersion"] = "0.4.0";
  EXPECT_EQ(Stdout(o), prev);
}

TEST(CniPlugin, WithoutKubernetesArgsNothingIsAsked) {
  FakeAgent agent;
  Environment env = Env("ADD");
  env.args = "IgnoreUnknown=1";
  Outcome o = Execute(env, Config(), agent.Call());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(Stdout(o), json::parse(kPrevResult));
  EXPECT_TRUE(agent.requests.empty());
}

TEST(CniPlugin, AnUnreachableAgentFailsTheAddSoTheKubeletRetries) {
  FakeAgent agent;
  agent.answer = absl::UnavailableError("cannot reach the zmesh agent: connect(/s): ENOENT");
  Outcome o = Execute(Env("ADD"), Config(), agent.Call());
  EXPECT_NE(o.exit_code, 0);
  json err = Stdout(o);
  EXPECT_EQ(err["cniVersion"], "1.0.0");
  EXPECT_EQ(err["code"], 11);
  EXPECT_THAT(err["msg"].get<std::string>(), HasSubstr("cannot enroll pod demo/web-0"));
  EXPECT_THAT(err["details"].get<std::string>(), HasSubstr("cannot reach the zmesh agent"));
}

TEST(CniPlugin, TheAgentsRefusalIsTheError) {
  FakeAgent agent;
  agent.answer = PodReply{
      .ok = false, .error = "demo/web-0: not enrolled in time: waiting for ztunnel", .retry = true};
  Outcome o = Execute(Env("ADD"), Config(), agent.Call());
  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(Stdout(o)["code"], 11);
  EXPECT_THAT(Stdout(o)["details"].get<std::string>(), HasSubstr("waiting for ztunnel"));
  agent.answer =
      PodReply{.ok = false, .error = "demo/web-0: annotation zmesh.io/exclude-inbound-ports: bad"};
  o = Execute(Env("ADD"), Config(), agent.Call());
  EXPECT_EQ(Stdout(o)["code"], 100);
}

TEST(CniPlugin, ConfigurationAndEnvironmentErrorsHaveTheirCodes) {
  FakeAgent agent;
  struct Case {
    std::string what;
    Environment env;
    std::string conf;
    int code;
    std::string msg;
  };
  Environment no_container = Env("ADD");
  no_container.container_id.clear();
  Environment no_netns = Env("CHECK");
  no_netns.netns.clear();
  Environment bad_args = Env("ADD");
  bad_args.args = "K8S_POD_NAME";
  const Case cases[] = {
      {"not json", Env("ADD"), "{", 6, "not a JSON object"},
      {"unknown version", Env("ADD"), Config("9.9.9"), 1, "does not speak cniVersion \"9.9.9\""},
      {"not chained", Env("ADD"), Config("1.0.0", false), 7, "chained plugin"},
      {"no socket", Env("ADD"), Config("1.0.0", true, ""), 7, "agent_socket"},
      {"bad timeout", Env("ADD"),
       Config("1.0.0", true, R"(,"agent_socket":"/s","timeout_seconds":0)"), 7, "timeout_seconds"},
      {"check on 0.3.1", Env("CHECK"), Config("0.3.1"), 1, "CHECK needs cniVersion 0.4.0"},
      {"no container id", no_container, Config(), 4, "CNI_CONTAINERID"},
      {"no netns", no_netns, Config(), 4, "CNI_NETNS"},
      {"bad CNI_ARGS", bad_args, Config(), 4, "not KEY=VALUE"},
      {"unknown command", Env("GC"), Config(), 4, "unknown CNI_COMMAND \"GC\""},
  };
  for (const Case& c : cases) {
    Outcome o = Execute(c.env, c.conf, agent.Call());
    EXPECT_NE(o.exit_code, 0) << c.what;
    json err = Stdout(o);
    EXPECT_EQ(err["code"], c.code) << c.what << ": " << o.stdout_text;
    EXPECT_THAT(err["msg"].get<std::string>(), HasSubstr(c.msg)) << c.what;
  }
  EXPECT_TRUE(agent.requests.empty());
}

TEST(CniPlugin, DelUnenrollsAndNeverBlocksAPodsDeletion) {
  FakeAgent agent;
  agent.answer = PodReply{.ok = true, .state = "removed"};
  Environment env = Env("DEL");
  env.netns.clear();  // the runtime may have torn the netns down already
  Outcome o = Execute(env, Config("1.0.0", false), agent.Call());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "");
  ASSERT_EQ(agent.requests.size(), 1u);
  EXPECT_EQ(agent.requests[0].command, Command::kDel);
  EXPECT_EQ(agent.requests[0].container_id, "c0ffee");
  EXPECT_LE(agent.timeout, std::chrono::seconds(10));
  // The agent is down: still a success, with a warning for the runtime's log.
  agent.answer = absl::UnavailableError("cannot reach the zmesh agent");
  o = Execute(env, Config("1.0.0", false), agent.Call());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_THAT(o.stderr_text, HasSubstr("cannot reach the zmesh agent"));
}

TEST(CniPlugin, CheckReportsTheAgentsView) {
  FakeAgent agent;
  Outcome o = Execute(Env("CHECK"), Config(), agent.Call());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.stdout_text, "");
  ASSERT_EQ(agent.requests.size(), 1u);
  EXPECT_EQ(agent.requests[0].command, Command::kCheck);
  agent.answer = PodReply{.ok = false, .error = "demo/web-0: not enrolled", .retry = true};
  o = Execute(Env("CHECK"), Config(), agent.Call());
  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(Stdout(o)["code"], 11);
  EXPECT_THAT(Stdout(o)["details"].get<std::string>(), HasSubstr("not enrolled"));
}

TEST(CniPlugin, PodArgs) {
  auto a = ParsePodArgs("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;;K8S_POD_UID=c;Other=x");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->pod_namespace, "a");
  EXPECT_EQ(a->pod_name, "b");
  EXPECT_EQ(a->pod_uid, "c");
  EXPECT_TRUE(ParsePodArgs("").ok());
}

}  // namespace
}  // namespace zm::cni

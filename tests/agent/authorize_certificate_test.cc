// The local-mode CA's authorization rule: only the ztunnel connected over ZDS, and only for
// identities of pods enrolled on this node.
#include <gtest/gtest.h>

#include "agent/agent.h"

namespace zm::agent {
namespace {

AgentView ViewWithPods() {
  AgentView v;
  v.ztunnel_pid = 4242;
  v.pods = {{.uid = "a", .pod = "demo/client", .ns = "demo", .service_account = "client",
             .enrolled = true},
            {.uid = "b", .pod = "demo/pending", .ns = "demo", .service_account = "pending",
             .enrolled = false, .error = "waiting"}};
  return v;
}

TEST(AuthorizeCertificateTest, TheZtunnelGetsAnEnrolledPodsIdentity) {
  EXPECT_TRUE(AuthorizeCertificate(ViewWithPods(), 4242, "demo", "client").ok());
}

TEST(AuthorizeCertificateTest, AnotherProcessIsRefused) {
  auto st = AuthorizeCertificate(ViewWithPods(), 999, "demo", "client");
  ASSERT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_NE(st.message().find("pid 999 is not the ztunnel"), std::string_view::npos) << st;
}

TEST(AuthorizeCertificateTest, NoZtunnelConnectedRefusesEveryone) {
  AgentView v = ViewWithPods();
  v.ztunnel_pid = 0;
  auto st = AuthorizeCertificate(v, 4242, "demo", "client");
  ASSERT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_NE(st.message().find("no ztunnel is connected"), std::string_view::npos);
}

TEST(AuthorizeCertificateTest, AnIdentityOfNoPodOnThisNodeIsRefused) {
  auto st = AuthorizeCertificate(ViewWithPods(), 4242, "demo", "admin");
  ASSERT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_NE(st.message().find("no pod enrolled on this node runs as ns/demo/sa/admin"),
            std::string_view::npos)
      << st;
}

TEST(AuthorizeCertificateTest, APodNotYetEnrolledGivesNoIdentity) {
  EXPECT_FALSE(AuthorizeCertificate(ViewWithPods(), 4242, "demo", "pending").ok());
}

// ztunnel fetches a pod's certificate on the pod's ZDS Add, before the agent records the
// enrollment: pods the agent is enrolling on this node (wanted) are authorized too.
TEST(AuthorizeCertificateTest, APodBeingEnrolledOnThisNodeGetsItsIdentity) {
  AgentView v = ViewWithPods();
  v.wanted = {{.uid = "b", .name = "pending", .ns = "demo", .service_account = "pending"}};
  EXPECT_TRUE(AuthorizeCertificate(v, 4242, "demo", "pending").ok());
  EXPECT_FALSE(AuthorizeCertificate(v, 999, "demo", "pending").ok());
  EXPECT_FALSE(AuthorizeCertificate(v, 4242, "other", "pending").ok());
}

TEST(AuthorizeCertificateTest, TheSameServiceAccountInAnotherNamespaceIsRefused) {
  EXPECT_FALSE(AuthorizeCertificate(ViewWithPods(), 4242, "other", "client").ok());
}

// A waypoint (DESIGN §6) is not the ztunnel: a process in a waypoint pod's netns gets that pod's
// identity and nothing else; the same process outside any waypoint netns gets nothing.
AgentView ViewWithWaypoint() {
  AgentView v = ViewWithPods();
  v.waypoint_pods = {
      {.pod = "demo/waypoint-0", .ns = "demo", .service_account = "waypoint", .netns_inode = 77}};
  return v;
}

TEST(AuthorizeCertificateTest, AWaypointGetsItsOwnIdentity) {
  EXPECT_TRUE(AuthorizeCertificate(ViewWithWaypoint(), 555, 77, "demo", "waypoint").ok());
}

TEST(AuthorizeCertificateTest, AWaypointAskingForAnotherIdentityIsRefused) {
  auto st = AuthorizeCertificate(ViewWithWaypoint(), 555, 77, "demo", "client");
  ASSERT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_NE(st.message().find("netns of waypoint demo/waypoint-0, which runs as "
                              "ns/demo/sa/waypoint, not ns/demo/sa/client"),
            std::string_view::npos)
      << st;
}

TEST(AuthorizeCertificateTest, AProcessOutsideAWaypointNetnsGetsNoWaypointIdentity) {
  EXPECT_FALSE(AuthorizeCertificate(ViewWithWaypoint(), 555, 78, "demo", "waypoint").ok());
  EXPECT_FALSE(AuthorizeCertificate(ViewWithWaypoint(), 555, std::nullopt, "demo", "waypoint").ok());
}

TEST(AuthorizeCertificateTest, TheZtunnelDoesNotGetAWaypointIdentity) {
  // ztunnel serves enrolled pods only; a waypoint pod is never enrolled.
  EXPECT_FALSE(AuthorizeCertificate(ViewWithWaypoint(), 4242, 1, "demo", "waypoint").ok());
  EXPECT_TRUE(AuthorizeCertificate(ViewWithWaypoint(), 4242, 1, "demo", "client").ok());
}

}  // namespace
}  // namespace zm::agent

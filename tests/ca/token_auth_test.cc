// The static token file (lines TOKEN,NODE) and the bearer token of a call: malformed input is
// refused by file and line, unknown tokens are refused, a changed file counts at once and a
// broken one refuses everybody.
#include "ca/token_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ca/ca_test_support.h"

namespace zm::ca {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

TEST(ParseTokenFileTest, CommentsBlankLinesAndBlanksAroundFieldsAreFine) {
  auto tokens = ParseTokenFile(
      "# a comment\n\n  tok-a , node1 \r\n\t# indented comment\ntok-b,node2", "/etc/tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 2u);
  std::vector<std::pair<std::string, int>> entries;
  for (const auto& [hash, e] : *tokens) {
    EXPECT_EQ(hash.size(), 64u) << "kept as a SHA-256, not as the token";
    entries.emplace_back(e.node, e.line);
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::pair<std::string, int>>{{"node1", 3}, {"node2", 5}}));
}

struct MalformedCase {
  std::string name;
  std::string content;
  std::string message;
};

class MalformedTokenFileTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedTokenFileTest, IsRefusedNamingFileAndLine) {
  auto tokens = ParseTokenFile(GetParam().content, "/etc/tokens");
  ASSERT_FALSE(tokens.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(tokens.status()));
  EXPECT_EQ(tokens.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Lines, MalformedTokenFileTest,
    ::testing::Values(
        MalformedCase{"NoComma", "ok,node1\ntoken-only\n",
                      "token file /etc/tokens, line 2: expected TOKEN,NODE, found 1 field(s)"},
        MalformedCase{"ExtraField", "# c\ntok,node1,system:nodes\n",
                      "token file /etc/tokens, line 2: expected TOKEN,NODE, found 3 field(s)"},
        MalformedCase{"EmptyToken", " ,node1\n", "token file /etc/tokens, line 1: empty token"},
        MalformedCase{"EmptyNode", "tok,\n",
                      "token file /etc/tokens, line 1: \"\" is not a node name (a lower-case "
                      "DNS subdomain)"},
        MalformedCase{"UpperCaseNode", "tok,Node1\n",
                      "token file /etc/tokens, line 1: \"Node1\" is not a node name (a "
                      "lower-case DNS subdomain)"},
        MalformedCase{"BlankInsideToken", "to k,node1\n",
                      "token file /etc/tokens, line 1: the token has a blank or a "
                      "non-printable character"},
        MalformedCase{"DuplicateToken", "tok,node1\n\ntok,node2\n",
                      "token file /etc/tokens, line 3: the same token is already given on "
                      "line 1"}),
    [](const auto& info) { return info.param.name; });

std::multimap<grpc::string_ref, grpc::string_ref> Metadata(
    const std::vector<std::pair<std::string, std::string>>& kv) {
  static std::vector<std::pair<std::string, std::string>> keep;  // string_refs point here
  keep = kv;
  std::multimap<grpc::string_ref, grpc::string_ref> md;
  for (const auto& [k, v] : keep) md.emplace(k, v);
  return md;
}

TEST(BearerTokenTest, MissingIsUnauthenticatedAndSaysWhatToSend) {
  auto t = BearerToken(Metadata({{"user-agent", "x"}}));
  ASSERT_TRUE(absl::IsUnauthenticated(t.status()));
  EXPECT_THAT(t.status().message(), HasSubstr("no bearer token"));
}

TEST(BearerTokenTest, OtherSchemesEmptyTokensAndDuplicatesAreRefused) {
  EXPECT_TRUE(
      absl::IsUnauthenticated(BearerToken(Metadata({{"authorization", "Basic dTpw"}})).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(BearerToken(Metadata({{"authorization", "Bearer  "}})).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(BearerToken(Metadata({{"authorization", "Bearer"}})).status()));
  auto two = BearerToken(Metadata({{"authorization", "Bearer a"}, {"authorization", "Bearer b"}}));
  ASSERT_TRUE(absl::IsUnauthenticated(two.status()));
  EXPECT_THAT(two.status().message(), HasSubstr("more than one"));
}

TEST(BearerTokenTest, TheSchemeIsCaseInsensitive) {
  auto t = BearerToken(Metadata({{"authorization", "bearer tok-1"}}));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "tok-1");
}

class StaticTokenFileTest : public ::testing::Test {
 protected:
  TempDir dir_{"zmesh-tokens"};
  std::string path_ = dir_ / "tokens";
};

TEST_F(StaticTokenFileTest, AMalformedFileFailsTheLoadByLine) {
  WriteFile(path_, "tok,node1\nbroken\n");
  auto f = StaticTokenFile::Load(path_);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr(StrCat("token file ", path_, ", line 2")));
}

TEST_F(StaticTokenFileTest, AMissingFileFailsTheLoadByName) {
  auto f = StaticTokenFile::Load(path_);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr(path_));
}

TEST_F(StaticTokenFileTest, AnUnknownTokenIsUnauthenticated) {
  WriteFile(path_, "tok-node1,node1\n");
  auto f = StaticTokenFile::Load(path_);
  ASSERT_TRUE(f.ok()) << f.status();
  auto caller = (*f)->Authenticate("tok-node2");
  ASSERT_TRUE(absl::IsUnauthenticated(caller.status())) << caller.status();
  EXPECT_THAT(caller.status().message(), HasSubstr("unknown token"));
  EXPECT_FALSE((*f)->Authenticate("tok-node").ok()) << "a prefix is not the token";
}

TEST_F(StaticTokenFileTest, AKnownTokenNamesItsNode) {
  WriteFile(path_, "tok-node1,node1\ntok-node2,node2\n");
  auto f = StaticTokenFile::Load(path_);
  ASSERT_TRUE(f.ok()) << f.status();
  auto caller = (*f)->Authenticate("tok-node2");
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->node, "node2");
  EXPECT_THAT(caller->description, HasSubstr("node2"));
  EXPECT_THAT(caller->description, ::testing::Not(HasSubstr("tok-node2")))
      << "the token never goes into logs";
}

TEST_F(StaticTokenFileTest, ARevokedTokenIsRefusedFromTheNextCallOn) {
  WriteFile(path_, "tok-node1,node1\ntok-node2,node2\n");
  auto f = StaticTokenFile::Load(path_);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->Authenticate("tok-node2").ok());
  WriteFile(path_, "tok-node1,node1\n");
  EXPECT_TRUE(absl::IsUnauthenticated((*f)->Authenticate("tok-node2").status()));
  EXPECT_TRUE((*f)->Authenticate("tok-node1").ok());
}

TEST_F(StaticTokenFileTest, ABrokenEditRefusesEveryoneUntilFixed) {
  WriteFile(path_, "tok-node1,node1\n");
  auto f = StaticTokenFile::Load(path_);
  ASSERT_TRUE(f.ok()) << f.status();
  WriteFile(path_, "tok-node1,node1\noops\n");
  auto caller = (*f)->Authenticate("tok-node1");
  ASSERT_TRUE(absl::IsUnavailable(caller.status())) << caller.status();
  EXPECT_THAT(caller.status().message(), HasSubstr(StrCat(path_, ", line 2")));
  WriteFile(path_, "tok-node1,node1\n");
  EXPECT_TRUE((*f)->Authenticate("tok-node1").ok());
}

TEST_F(StaticTokenFileTest, ARemovedFileRefusesEveryone) {
  WriteFile(path_, "tok-node1,node1\n");
  auto f = StaticTokenFile::Load(path_);
  ASSERT_TRUE(f.ok()) << f.status();
  std::filesystem::remove(path_);
  auto caller = (*f)->Authenticate("tok-node1");
  ASSERT_TRUE(absl::IsUnavailable(caller.status())) << caller.status();
  EXPECT_THAT(caller.status().message(), HasSubstr(path_));
}

}  // namespace
}  // namespace zm::ca

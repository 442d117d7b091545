#include "common/authz/path_normalize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zm::authz {
namespace {

using ::testing::HasSubstr;

std::string Norm(std::string_view target, PathNormalization mode = PathNormalization::kBase) {
  auto r = NormalizePath(target, mode);
  EXPECT_TRUE(r.ok()) << target << ": " << r.status();
  return r.ok() ? *r : std::string("<error>");
}

void ExpectBad(std::string_view target, std::string_view says,
               PathNormalization mode = PathNormalization::kBase) {
  auto r = NormalizePath(target, mode);
  ASSERT_FALSE(r.ok()) << target << " normalized to " << *r;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(says)) << target;
}

// ---- What an attacker sends to slip past a `paths` rule -------------------------------------

TEST(PathNormalizeTest, DotSegmentsCannotEscapeARule) {
  EXPECT_EQ(Norm("/a/../admin"), "/admin");
  EXPECT_EQ(Norm("/a/./b/../../admin"), "/admin");
  EXPECT_EQ(Norm("/../../admin"), "/admin");
  EXPECT_EQ(Norm("/public/.."), "/");
  EXPECT_EQ(Norm("/a/b/."), "/a/b/");
}

TEST(PathNormalizeTest, EncodedDotsAreDotsAndUnreservedEscapesAreDecoded) {
  EXPECT_EQ(Norm("/a/%2e%2e/admin"), "/admin");
  EXPECT_EQ(Norm("/a/%2E%2E/admin"), "/admin");
  EXPECT_EQ(Norm("/a/.%2e/admin"), "/admin");
  EXPECT_EQ(Norm("/%61dmin"), "/admin");
  EXPECT_EQ(Norm("/x%7e"), "/x~");
}

TEST(PathNormalizeTest, BackslashIsASlash) { EXPECT_EQ(Norm("/a\\..\\admin"), "/admin"); }

TEST(PathNormalizeTest, EncodedNulAndMalformedEscapesAreRefused) {
  ExpectBad("/admin%00.html", "%00");
  ExpectBad("/a%zz", "malformed percent-escape");
  ExpectBad("/a%4", "truncated percent-escape");
  ExpectBad("/a%", "truncated percent-escape");
}

TEST(PathNormalizeTest, ControlCharactersFragmentsAndRelativeTargetsAreRefused) {
  ExpectBad(std::string_view("/a\0b", 4), "control character");
  ExpectBad("/a b", "control character or space");
  ExpectBad("/a\r\nX: y", "control character");
  ExpectBad("/a#frag", "fragment");
  ExpectBad("/a?x=1#frag", "fragment");
  ExpectBad("admin", "does not start with '/'");
  ExpectBad("", "does not start with '/'");
  ExpectBad("*", "does not start with '/'");
}

TEST(PathNormalizeTest, DoubleSlashesStayUnderBaseAndMergeOnRequest) {
  EXPECT_EQ(Norm("//admin"), "//admin");
  EXPECT_EQ(Norm("//admin", PathNormalization::kMergeSlashes), "/admin");
  EXPECT_EQ(Norm("/a///b//", PathNormalization::kMergeSlashes), "/a/b/");
  EXPECT_EQ(Norm("//admin", PathNormalization::kDecodeAndMergeSlashes), "/admin");
}

TEST(PathNormalizeTest, EncodedSlashesStayEncodedUnlessDecodingIsAsked) {
  EXPECT_EQ(Norm("/a%2fb"), "/a%2Fb");
  EXPECT_EQ(Norm("/a%2F..%2Fadmin"), "/a%2F..%2Fadmin");  // one segment: nothing to remove
  EXPECT_EQ(Norm("/a%2F..%2Fadmin", PathNormalization::kMergeSlashes), "/a%2F..%2Fadmin");
  EXPECT_EQ(Norm("/a%2F..%2Fadmin", PathNormalization::kDecodeAndMergeSlashes), "/admin");
  EXPECT_EQ(Norm("/a%5c..%5Cadmin", PathNormalization::kDecodeAndMergeSlashes), "/admin");
  EXPECT_EQ(Norm("/%2F%2Fadmin", PathNormalization::kDecodeAndMergeSlashes), "/admin");
}

TEST(PathNormalizeTest, TheQueryIsKeptByteForByte) {
  EXPECT_EQ(Norm("/a/../b?x=/../%2e&y=%00"), "/b?x=/../%2e&y=%00");
  EXPECT_EQ(Norm("/?"), "/?");
  EXPECT_EQ(PathWithoutQuery("/b?x=1"), "/b");
}

TEST(PathNormalizeTest, OtherBytesAreCanonicallyEncoded) {
  EXPECT_EQ(Norm("/caf\xc3\xa9"), "/caf%C3%A9");
  EXPECT_EQ(Norm("/a%3a"), "/a%3A");
  EXPECT_EQ(Norm("/a:b@c!$&'()*+,;="), "/a:b@c!$&'()*+,;=");
}

TEST(PathNormalizeTest, ModeNames) {
  for (auto m : {PathNormalization::kBase, PathNormalization::kMergeSlashes,
                 PathNormalization::kDecodeAndMergeSlashes}) {
    EXPECT_EQ(*ParsePathNormalization(PathNormalizationName(m)), m);
  }
  EXPECT_FALSE(ParsePathNormalization("merge_slashes").ok());
}

}  // namespace
}  // namespace zm::authz

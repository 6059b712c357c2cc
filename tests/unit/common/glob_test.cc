#include "bridge/common/glob.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hb {
namespace {

TEST(GlobMatch, StarMatchesAnyRunIncludingEmpty) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "payments"));
  EXPECT_TRUE(GlobMatch("pay*", "pay"));
  EXPECT_TRUE(GlobMatch("pay*", "payments"));
  EXPECT_TRUE(GlobMatch("service.*", "service.down"));
  EXPECT_TRUE(GlobMatch("*-api-*", "orders-api-v2"));
  EXPECT_FALSE(GlobMatch("service.*", "instance.down"));
}

TEST(GlobMatch, QuestionMarkMatchesExactlyOneCharacter) {
  EXPECT_TRUE(GlobMatch("db-?", "db-1"));
  EXPECT_FALSE(GlobMatch("db-?", "db-"));
  EXPECT_FALSE(GlobMatch("db-?", "db-12"));
}

TEST(GlobMatch, LiteralPatternMustMatchWhole) {
  EXPECT_TRUE(GlobMatch("consul", "consul"));
  EXPECT_FALSE(GlobMatch("consul", "consul-esm"));
  EXPECT_FALSE(GlobMatch("consul", "my-consul"));
  EXPECT_FALSE(GlobMatch("", "x"));
}

TEST(GlobMatch, BacktracksAcrossSeveralStars) {
  EXPECT_TRUE(GlobMatch("a*b*c", "axxbyyc"));
  EXPECT_TRUE(GlobMatch("a*b*c", "abbbc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "axxbyy"));
  // Pathological for naive recursion; linear here.
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*b", std::string(2000, 'a')));
}

TEST(GlobMatchAny, MatchesWhenAnyPatternDoes) {
  std::vector<std::string> patterns = {"orders", "pay*"};
  EXPECT_TRUE(GlobMatchAny(patterns, "payments"));
  EXPECT_TRUE(GlobMatchAny(patterns, "orders"));
  EXPECT_FALSE(GlobMatchAny(patterns, "users"));
  EXPECT_FALSE(GlobMatchAny({}, "users"));
}

}  // namespace
}  // namespace hb

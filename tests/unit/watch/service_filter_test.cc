// Which catalog services the bridge watches (watch.services): include and
// exclude globs on the name, and tags the service must carry.

#include "bridge/watch/service_filter.h"

#include <gtest/gtest.h>

namespace hb {
namespace {

TEST(ServiceFilterTest, DefaultsWatchEveryServiceButConsulItself) {
  const ServiceFilter filter{ServiceFilterOptions{}};
  EXPECT_TRUE(filter.Matches("payments", {}));
  EXPECT_TRUE(filter.Matches("payments", {"v2", "http"}));
  EXPECT_FALSE(filter.Matches("consul", {}));
  // Only the exact name: a service that merely starts with it is watched.
  EXPECT_TRUE(filter.Matches("consul-esm", {}));
}

TEST(ServiceFilterTest, IncludeGlobsSelectByName) {
  ServiceFilterOptions options;
  options.include = {"payments-*", "checkout"};
  const ServiceFilter filter{options};
  EXPECT_TRUE(filter.Matches("payments-api", {}));
  EXPECT_TRUE(filter.Matches("payments-", {}));  // `*` matches the empty rest
  EXPECT_TRUE(filter.Matches("checkout", {}));
  EXPECT_FALSE(filter.Matches("checkout-v2", {}));
  EXPECT_FALSE(filter.Matches("payments", {}));
  EXPECT_FALSE(filter.Matches("", {}));
}

TEST(ServiceFilterTest, ExcludeWinsOverInclude) {
  ServiceFilterOptions options;
  options.include = {"*"};
  options.exclude = {"*-canary", "consul"};
  const ServiceFilter filter{options};
  EXPECT_TRUE(filter.Matches("payments", {}));
  EXPECT_FALSE(filter.Matches("payments-canary", {}));
  EXPECT_FALSE(filter.Matches("consul", {}));
}

TEST(ServiceFilterTest, EveryRequiredTagMustBeThere) {
  ServiceFilterOptions options;
  options.tags = {"http", "prod"};
  const ServiceFilter filter{options};
  EXPECT_TRUE(filter.Matches("payments", {"prod", "v2", "http"}));
  EXPECT_FALSE(filter.Matches("payments", {"http"}));
  EXPECT_FALSE(filter.Matches("payments", {}));
  // Tags compare exactly: no globbing, no case folding.
  EXPECT_FALSE(filter.Matches("payments", {"HTTP", "prod"}));
  EXPECT_FALSE(filter.Matches("payments", {"http*", "prod"}));
}

TEST(ServiceFilterTest, NoIncludeMatchesNothing) {
  ServiceFilterOptions options;
  options.include = {};
  const ServiceFilter filter{options};
  EXPECT_FALSE(filter.Matches("payments", {}));
}

}  // namespace
}  // namespace hb

#include "bridge/common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace hb {
namespace {

TEST(Status, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  auto status = Status::PermissionDenied("ACL not found");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(status.ToString(), "permission denied: ACL not found");
}

TEST(StatusOr, HoldsValueOrError) {
  StatusOr<std::string> value = std::string("x");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "x");
  EXPECT_TRUE(value.status().ok());

  StatusOr<std::string> error = Status::Unavailable("connection refused");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), StatusCode::kUnavailable);
}

TEST(StatusOr, MovesOutMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> holder = std::make_unique<int>(7);
  auto owned = std::move(holder).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 7);
}

}  // namespace
}  // namespace hb

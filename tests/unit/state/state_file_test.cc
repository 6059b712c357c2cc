#include "bridge/state/state_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/test_dir.h"

namespace hb {
namespace {

using ::testing::HasSubstr;

class StateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SavedInstance saved;
    saved.datacenter = "dc1";
    saved.service = "payments";
    saved.instance = {
        "node-a",
        "payments-1",
        "payments",
        "10.1.2.3",
        8080,
        {"v2"},
        {{"version", "2.4.1"}},
        {{"service:payments-1", "TTL", HealthStatus::kPassing, "ok", "", "payments-1", "ttl"}}};
    saved.reported_status = HealthStatus::kPassing;
    saved.reported_up = true;
    saved.index = 42;
    saved.since = WallTime(std::chrono::milliseconds(1'700'000'000'000));
    state_.services = {{"dc1", "payments"}, {"dc1", "orders"}};
    state_.instances = {saved};
  }

  std::string Content() const {
    std::ifstream in(file_, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void Write(const std::string& content) const {
    std::ofstream(file_, std::ios::binary | std::ios::trunc) << content;
  }

  test_support::TestDir dir_{"state_file_test"};
  std::filesystem::path file_ = dir_ / "state.json";
  SavedState state_;
};

TEST_F(StateFileTest, NoFileIsAFirstStart) {
  auto loaded = LoadStateFile(file_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded->has_value());
}

TEST_F(StateFileTest, WhatIsSavedLoadsBackAndReplacesTheOldFile) {
  ASSERT_TRUE(SaveStateFile(file_, SavedState{}).ok());
  ASSERT_TRUE(SaveStateFile(file_, state_).ok());
  auto loaded = LoadStateFile(file_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, state_);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "state.json.tmp"));
}

TEST_F(StateFileTest, ATruncatedFileIsDataLossNotAPartialState) {
  ASSERT_TRUE(SaveStateFile(file_, state_).ok());
  const std::string content = Content();
  Write(content.substr(0, content.size() / 2));
  auto loaded = LoadStateFile(file_);
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("checksum mismatch"));
  EXPECT_THAT(loaded.status().message(), HasSubstr(file_.string()));

  Write("hb-st");
  EXPECT_THAT(LoadStateFile(file_).status().message(), HasSubstr("header"));
}

TEST_F(StateFileTest, AFlippedBitAnywhereIsDetected) {
  ASSERT_TRUE(SaveStateFile(file_, state_).ok());
  std::string content = Content();
  // A bit inside a value JSON would still accept: the address.
  const auto at = content.find("10.1.2.3");
  ASSERT_NE(at, std::string::npos);
  content[at + 3] ^= 0x04;
  Write(content);
  EXPECT_EQ(LoadStateFile(file_).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace hb

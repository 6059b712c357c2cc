#include "bridge/router/dead_letter.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/support/sample_events.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

namespace fs = std::filesystem;

std::size_t Lines(const fs::path& path) {
  std::ifstream in(path);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

TEST(DeadLetterFileTest, RotatesPastItsSizeAndKeepsABoundedNumberOfFiles) {
  test_support::TestDir dir("dead_letter_test");
  const fs::path path = dir.path() / "hooks.dead.jsonl";
  const std::string payload(900, 'x');  // each line about 1 KiB
  auto file = DeadLetterFile::Open(
      "hooks", path.string(), [&](const Event&) { return "{\"p\":\"" + payload + "\"}"; },
      DeadLetterLimits{4096, 2});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const Event event = test_support::InstanceEvent("p-1", EventType::kInstanceDown, 1);
  for (int i = 0; i < 40; ++i)
    (*file)->Write(event, "HTTP 503", 3, std::chrono::system_clock::now());
  EXPECT_LE(fs::file_size(path), 4096U);
  EXPECT_TRUE(fs::exists(path.string() + ".1"));
  EXPECT_TRUE(fs::exists(path.string() + ".2"));
  EXPECT_FALSE(fs::exists(path.string() + ".3")) << "two rotated files are kept, no more";
  EXPECT_GT(Lines(path), 0U);
  for (const auto& file_path : {path.string(), path.string() + ".1"}) {
    struct stat info {};
    ASSERT_EQ(::stat(file_path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600U) << file_path;
  }
}

TEST(DeadLetterFileTest, RefusesToWriteThroughALink) {
  test_support::TestDir dir("dead_letter_link");
  const fs::path target = dir.path() / "victim";
  std::ofstream(target) << "precious";
  const fs::path path = dir.path() / "hooks.dead.jsonl";
  fs::create_symlink(target, path);
  auto file = DeadLetterFile::Open("hooks", path.string(), [](const Event&) { return "{}"; });
  EXPECT_FALSE(file.ok());
}

}  // namespace
}  // namespace hb

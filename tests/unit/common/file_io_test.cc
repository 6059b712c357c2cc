#include "bridge/common/file_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace hb {
namespace {

namespace fs = std::filesystem;

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hb-file-io-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static mode_t ModeOf(const fs::path& path) {
    struct stat info {};
    EXPECT_EQ(::lstat(path.c_str(), &info), 0) << path;
    return info.st_mode & 0777;
  }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
};

TEST_F(FileIoTest, CreatedFilesAreReadableByTheOwnerOnly) {
  const auto appended = dir_ / "spool.log";
  ASSERT_TRUE(OpenForAppend(appended).ok());
  EXPECT_EQ(ModeOf(appended), 0600U);
  const auto replaced = dir_ / "state.json";
  ASSERT_TRUE(ReplaceFileDurably(replaced, "{}").ok());
  EXPECT_EQ(ModeOf(replaced), 0600U);
  const auto nested = dir_ / "a" / "b";
  ASSERT_TRUE(CreatePrivateDirectories(nested).ok());
  EXPECT_EQ(ModeOf(dir_ / "a"), 0700U);
  EXPECT_EQ(ModeOf(nested), 0700U);
  EXPECT_TRUE(CreatePrivateDirectories(nested).ok()) << "existing directories are fine";
}

TEST_F(FileIoTest, APlantedLinkIsNeverWrittenThrough) {
  const auto target = dir_ / "victim";
  std::ofstream(target) << "precious";
  // The review's case: state.json.tmp made a link to another file.
  const auto state = dir_ / "state.json";
  fs::create_symlink(target, dir_ / "state.json.tmp");
  ASSERT_TRUE(ReplaceFileDurably(state, "new state").ok());
  EXPECT_EQ(Read(target), "precious");
  EXPECT_EQ(Read(state), "new state");
  EXPECT_FALSE(fs::is_symlink(state));

  const auto link = dir_ / "segment.log";
  fs::create_symlink(target, link);
  const auto opened = OpenForAppend(link);
  EXPECT_FALSE(opened.ok());
  EXPECT_EQ(Read(target), "precious");
}

TEST_F(FileIoTest, APathThroughAFileIsAClearError) {
  std::ofstream(dir_ / "file") << "x";
  const Status created = CreatePrivateDirectories(dir_ / "file" / "sub");
  EXPECT_FALSE(created.ok());
  EXPECT_NE(created.message().find("file"), std::string::npos) << created.message();
}

}  // namespace
}  // namespace hb

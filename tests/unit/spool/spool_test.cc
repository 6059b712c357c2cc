#include "bridge/spool/spool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <fstream>

#include "tests/support/test_dir.h"

namespace hb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class SpoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<Spool> Open(SpoolRecovery& recovery, std::uint64_t segment_bytes = 4096,
                              std::uint64_t max_bytes = 1 << 20,
                              std::uint64_t max_unwritten_bytes = 1 << 20) {
    auto spool =
        Spool::Open({dir_.path(), max_bytes, segment_bytes, max_unwritten_bytes}, recovery);
    EXPECT_TRUE(spool.ok()) << spool.status().ToString();
    return spool.ok() ? std::move(spool).value() : nullptr;
  }
  std::unique_ptr<Spool> Open() {
    SpoolRecovery ignored;
    return Open(ignored);
  }

  std::vector<std::filesystem::path> Segments() const {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  // Every unacknowledged event, read back a page of two at a time.
  static std::vector<std::string> Payloads(Spool& spool) {
    std::vector<std::string> payloads;
    std::uint64_t after = 0;
    while (true) {
      SpoolPage page = spool.ReadAfter(after, 2);
      EXPECT_THAT(page.problems, IsEmpty());
      if (page.records.empty()) break;
      for (auto& record : page.records) payloads.push_back(std::move(record.payload));
      after = page.through;
    }
    return payloads;
  }

  test_support::TestDir dir_{"spool_test"};
};

TEST_F(SpoolTest, AReopenedSpoolHoldsTheUnacknowledgedEventsInOrder) {
  {
    auto spool = Open();
    std::vector<std::uint64_t> seqs;
    for (const char* payload : {"a", "b", "c", "d", "e"}) seqs.push_back(*spool->Append(payload));
    EXPECT_THAT(seqs, ElementsAre(1, 2, 3, 4, 5));
    spool->Acknowledge(std::vector<std::uint64_t>{4, 2});
    EXPECT_EQ(spool->unacknowledged(), 3U);
  }  // no Sync(): write() alone must survive the process (kill -9)
  SpoolRecovery recovery;
  auto spool = Open(recovery);
  EXPECT_EQ(recovery.pending, 3U);
  EXPECT_THAT(Payloads(*spool), ElementsAre("a", "c", "e"));
  EXPECT_EQ(spool->ReadAfter(1, 1).records.at(0).seq, 3U);
  EXPECT_EQ(recovery.dropped_bytes, 0U);
  EXPECT_THAT(recovery.problems, IsEmpty());
  // Numbering goes on after the highest sequence ever written.
  EXPECT_EQ(*spool->Append("f"), 6U);
}

TEST_F(SpoolTest, ATornTailIsCutAtTheLastGoodRecordAndLaterAppendsStayReadable) {
  {
    auto spool = Open();
    for (const char* payload : {"first", "second", "third"})
      ASSERT_TRUE(spool->Append(payload).ok());
  }
  const auto file = Segments().front();
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 3);  // crash mid-write
  {
    SpoolRecovery recovery;
    auto spool = Open(recovery);
    EXPECT_THAT(Payloads(*spool), ElementsAre("first", "second"));
    EXPECT_GT(recovery.dropped_bytes, 0U);
    ASSERT_THAT(recovery.problems, SizeIs(1));
    EXPECT_THAT(recovery.problems[0], HasSubstr("torn record"));
    ASSERT_TRUE(spool->Append("fourth").ok());
  }
  SpoolRecovery recovery;
  auto reopened = Open(recovery);
  EXPECT_THAT(Payloads(*reopened), ElementsAre("first", "second", "fourth"));
  EXPECT_THAT(recovery.problems, IsEmpty());
}

TEST_F(SpoolTest, AFlippedBitFailsTheChecksumAndOnlyWhatFollowsIsDropped) {
  {
    auto spool = Open();
    for (const char* payload : {"alpha", "bravo", "charlie"})
      ASSERT_TRUE(spool->Append(payload).ok());
  }
  const auto file = Segments().front();
  std::string content;
  {
    std::ifstream in(file, std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto at = content.find("bravo");
  ASSERT_NE(at, std::string::npos);
  content[at] ^= 0x01;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;

  SpoolRecovery recovery;
  auto reopened = Open(recovery);
  EXPECT_THAT(Payloads(*reopened), ElementsAre("alpha"));
  ASSERT_THAT(recovery.problems, SizeIs(1));
  EXPECT_THAT(recovery.problems[0], HasSubstr("checksum mismatch"));
}

TEST_F(SpoolTest, SegmentsAreReclaimedOnceTheyAndAllOlderOnesAreAcknowledged) {
  SpoolRecovery unused;
  auto spool = Open(unused, /*segment_bytes=*/256);
  std::vector<std::uint64_t> seqs;
  seqs.reserve(40);
  for (int i = 0; i < 40; ++i) seqs.push_back(*spool->Append(std::string(50, 'x')));
  const std::size_t written = Segments().size();
  ASSERT_GT(written, 5U);

  // Everything but the oldest event: its segment holds every later one.
  spool->Acknowledge(std::span(seqs).subspan(1));
  EXPECT_EQ(Segments().size(), written);
  spool->Acknowledge(std::span(seqs).first(1));
  EXPECT_THAT(Segments(), SizeIs(1)) << "only the segment being written stays";
  EXPECT_EQ(spool->bytes(), std::filesystem::file_size(Segments().front()));
}

TEST_F(SpoolTest, AFullSpoolRefusesNewEventsWithoutLosingTheOthers) {
  SpoolRecovery unused;
  auto spool = Open(unused, /*segment_bytes=*/4096, /*max_bytes=*/300);
  int stored = 0;
  StatusOr<std::uint64_t> appended = std::uint64_t{0};
  while ((appended = spool->Append(std::string(40, 'y'))).ok()) ++stored;
  EXPECT_EQ(appended.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(appended.status().message(), HasSubstr("max_bytes 300"));
  EXPECT_GT(stored, 0);
  spool.reset();
  SpoolRecovery recovery;
  Open(recovery);
  EXPECT_EQ(recovery.pending, static_cast<std::size_t>(stored));
}

TEST_F(SpoolTest, WritesTheDiskRefusesAreKeptAndRetriedUntilItAcceptsThem) {
  auto spool = Open();
  ASSERT_TRUE(spool->Append("before").ok());
  // A file size limit makes write() fail as a full disk would (EFBIG).
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &original), 0);
  const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit tight = original;
  tight.rlim_cur = std::filesystem::file_size(Segments().back());
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);

  auto during = spool->Append("during");
  ASSERT_TRUE(during.ok()) << "the event is accepted, in memory";
  EXPECT_EQ(spool->last_write_error().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(spool->Sync().ok());

  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &original), 0);
  std::signal(SIGXFSZ, previous_handler);
  EXPECT_TRUE(spool->Sync().ok());
  EXPECT_TRUE(spool->last_write_error().ok());
  spool.reset();
  SpoolRecovery recovery;
  auto reopened = Open(recovery);
  EXPECT_THAT(Payloads(*reopened), ElementsAre("before", "during"));
  EXPECT_THAT(recovery.problems, IsEmpty()) << "no partial record was left behind";
}

TEST_F(SpoolTest, EventsAreReadBackInPagesOldestFirstSkippingAcknowledgedOnes) {
  auto spool = Open();
  for (const char* payload : {"a", "b", "c", "d", "e", "f"})
    ASSERT_TRUE(spool->Append(payload).ok());
  spool->Acknowledge(std::vector<std::uint64_t>{2, 3});
  SpoolPage first = spool->ReadAfter(0, 2);
  ASSERT_THAT(first.records, SizeIs(2));
  EXPECT_EQ(first.records[0].payload, "a");
  EXPECT_EQ(first.records[1].payload, "d");
  EXPECT_EQ(first.through, 4U);
  SpoolPage rest = spool->ReadAfter(first.through, 10);
  ASSERT_THAT(rest.records, SizeIs(2));
  EXPECT_EQ(rest.records[1].seq, 6U);
  EXPECT_EQ(rest.through, 6U);
  EXPECT_THAT(spool->ReadAfter(rest.through, 10).records, IsEmpty());
  EXPECT_EQ(spool->unacknowledged(), 4U) << "reading acknowledges nothing";
}

TEST_F(SpoolTest, ARecordCorruptedAfterItWasWrittenIsReportedAndNotReadAgain) {
  auto spool = Open();
  for (const char* payload : {"alpha", "bravo", "charlie"})
    ASSERT_TRUE(spool->Append(payload).ok());
  const auto file = Segments().back();
  std::string content;
  {
    std::ifstream in(file, std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
  }
  content[content.find("bravo")] ^= 0x01;
  {
    std::fstream out(file, std::ios::binary | std::ios::in | std::ios::out);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  SpoolPage page = spool->ReadAfter(0, 10);
  ASSERT_THAT(page.records, SizeIs(2));
  EXPECT_EQ(page.records[1].payload, "charlie");
  ASSERT_THAT(page.problems, SizeIs(1));
  EXPECT_THAT(page.problems[0], HasSubstr("event #2"));
  EXPECT_GT(page.dropped_bytes, 0U);
  EXPECT_EQ(spool->unacknowledged(), 2U);
}

TEST_F(SpoolTest, OneLongUnacknowledgedEventDoesNotFillTheSpool) {
  SpoolRecovery unused;
  auto spool = Open(unused, /*segment_bytes=*/256, /*max_bytes=*/2048);
  ASSERT_TRUE(spool->Append("stuck").ok());
  // Far more than max_bytes goes through while the first event stays: its
  // segment is compacted instead of pinning every later one.
  for (int i = 0; i < 500; ++i) {
    auto appended = spool->Append(std::string(40, 'z'));
    ASSERT_TRUE(appended.ok()) << "event " << i << ": " << appended.status().ToString();
    spool->Acknowledge(std::span(&*appended, 1));
  }
  EXPECT_LE(spool->bytes(), 2048U);
  spool.reset();
  SpoolRecovery recovery;
  auto reopened = Open(recovery, 256, 2048);
  EXPECT_EQ(recovery.pending, 1U);
  EXPECT_THAT(Payloads(*reopened), ElementsAre("stuck"));
  EXPECT_THAT(recovery.problems, IsEmpty());
}

TEST_F(SpoolTest, WhileTheDiskRefusesWritesTheEventsKeptInMemoryAreBounded) {
  SpoolRecovery unused;
  auto spool = Open(unused, 4096, 1 << 20, /*max_unwritten_bytes=*/500);
  ASSERT_TRUE(spool->Append("before").ok());
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &original), 0);
  const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit tight = original;
  tight.rlim_cur = std::filesystem::file_size(Segments().back());
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);

  int kept = 0;
  StatusOr<std::uint64_t> appended = std::uint64_t{0};
  while ((appended = spool->Append(std::string(40, 'm'))).ok()) ++kept;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &original), 0);
  std::signal(SIGXFSZ, previous_handler);
  EXPECT_EQ(appended.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(appended.status().message(), HasSubstr("max_unwritten_bytes 500"));
  EXPECT_GT(kept, 0);
  EXPECT_LE(kept * (40 + 17), 500);
  EXPECT_EQ(Payloads(*spool).size(), static_cast<std::size_t>(kept) + 1)
      << "the events kept in memory are read back from there";

  EXPECT_TRUE(spool->Sync().ok());
  spool.reset();
  SpoolRecovery recovery;
  Open(recovery);
  EXPECT_EQ(recovery.pending, static_cast<std::size_t>(kept) + 1);
}

TEST_F(SpoolTest, DestroyRemovesTheSpool) {
  auto spool = Open();
  ASSERT_TRUE(spool->Append("x").ok());
  spool->Destroy();
  EXPECT_FALSE(std::filesystem::exists(dir_.path()));
}

}  // namespace
}  // namespace hb

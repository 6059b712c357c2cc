// The log sink: one CloudEvents JSON line per event on its stream, and a
// failed write is a transient failure the worker retries.

#include "sinks/log/log_sink.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/sample_events.h"

namespace hb {
namespace {

using test_support::InstanceEvent;
using test_support::Shared;
using Kind = DeliveryResult::Kind;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::vector<std::string> Lines(std::FILE* file) {
  std::fflush(file);
  std::fseek(file, 0, SEEK_SET);
  std::string text;
  std::vector<char> chunk(4096);
  for (std::size_t n; (n = std::fread(chunk.data(), 1, chunk.size(), file)) > 0;) {
    text.append(chunk.data(), n);
  }
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line is cut";
  return lines;
}

TEST(LogSinkTest, WritesEachEventAsOneCloudEventsLineInOrder) {
  File file(std::tmpfile());
  ASSERT_NE(file, nullptr);
  CloudEventOptions options;
  options.type_prefix = "com.example";
  LogSink sink("log", file.get(), options);
  const std::vector<EventPtr> batch{
      Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 10)),
      Shared(InstanceEvent("payments-2", EventType::kInstanceUp, 11)),
      Shared(InstanceEvent("payments-1", EventType::kInstanceDeregistered, 12))};
  std::vector<DeliveryResult> results(batch.size(), DeliveryResult::Retry("not delivered"));
  sink.Deliver(batch, results);
  for (const auto& result : results) EXPECT_EQ(result.kind, Kind::kOk) << result.error;

  const auto lines = Lines(file.get());
  ASSERT_EQ(lines.size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(lines[i], SerializeCloudEvent(*batch[i], options)) << i;
  }
  EXPECT_NE(lines[0].find("\"type\":\"com.example.instance.down\""), std::string::npos);
}

TEST(LogSinkTest, LaterBatchesAppendAfterEarlierOnes) {
  File file(std::tmpfile());
  ASSERT_NE(file, nullptr);
  LogSink sink("log", file.get(), {});
  for (std::uint64_t index : {1, 2, 3}) {
    const std::vector<EventPtr> batch{
        Shared(InstanceEvent("payments-1", EventType::kInstanceDown, index))};
    std::vector<DeliveryResult> results(1);
    sink.Deliver(batch, results);
    ASSERT_EQ(results[0].kind, Kind::kOk) << results[0].error;
  }
  const auto lines = Lines(file.get());
  ASSERT_EQ(lines.size(), 3U);
  EXPECT_NE(lines[2].find("/3/instance.down\""), std::string::npos) << lines[2];
  EXPECT_TRUE(sink.Shutdown(std::chrono::milliseconds(100)));
}

TEST(LogSinkTest, AFailedWriteIsRetriedWithTheReason) {
  // /dev/full refuses every write with ENOSPC once the stream flushes.
  File full(std::fopen("/dev/full", "w"));
  if (full == nullptr) GTEST_SKIP() << "/dev/full is not available";
  LogSink sink("log", full.get(), {});
  const std::vector<EventPtr> batch{
      Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 10)),
      Shared(InstanceEvent("payments-2", EventType::kInstanceDown, 11))};
  std::vector<DeliveryResult> results(batch.size());
  sink.Deliver(batch, results);
  for (const auto& result : results) {
    EXPECT_EQ(result.kind, Kind::kRetry);
    EXPECT_NE(result.error.find("write failed"), std::string::npos) << result.error;
    EXPECT_NE(result.error.find("No space left on device"), std::string::npos) << result.error;
  }
}

}  // namespace
}  // namespace hb

#include "bridge/consul/consul_client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <numeric>
#include <set>

#include "tests/support/eventually.h"
#include "tests/support/fake_clock.h"
#include "tests/support/http/loopback_server.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/sanitizer_build.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

using test_support::ReceivedRequest;
using test_support::ScriptedResponse;

// The tests' Consul: a scripted peer on loopback whose accepted bodies are
// Consul's JSON, not events.
class ConsulPeer : public test_support::ScriptedHttpPeer {
 public:
  explicit ConsulPeer(Script script, int threads = 16)
      : ScriptedHttpPeer(std::move(script), threads) {
    ExpectCloudEvents(false);
  }
  std::string address() const { return url(""); }
};

// A 200 with Consul's index header.
ScriptedResponse ConsulAnswer(std::uint64_t index, std::string body = "[]",
                              std::chrono::milliseconds delay = {}) {
  ScriptedResponse answer = test_support::Answer(200, std::move(body), "", delay);
  answer.headers = {{"X-Consul-Index", std::to_string(index)}};
  answer.content_type = "application/json";
  return answer;
}

// A request held until the peer stops: a long poll Consul keeps open.
ScriptedResponse HeldAnswer(std::uint64_t index) {
  ScriptedResponse answer = ConsulAnswer(index);
  answer.hold_until_stop = true;
  return answer;
}

// test_support::Eventually() with this file's deadline.
::testing::AssertionResult WaitUntil(const std::function<bool()>& condition,
                                     milliseconds timeout = milliseconds(5000)) {
  return test_support::Eventually(condition, timeout);
}

ConsulClientOptions FastOptions(const std::string& address) {
  ConsulClientOptions options;
  options.address = address;
  options.wait = milliseconds(2000);
  options.backoff_initial = milliseconds(10);
  options.backoff_max = milliseconds(40);
  options.same_index_interval = milliseconds(100);
  return options;
}

// Collects what a query reports, thread-safely.
struct Recorder {
  std::mutex mutex;
  std::vector<QueryAnswer> answers;  // body views are not kept
  std::vector<std::string> bodies;
  std::vector<Status> errors;
  std::function<Status(const QueryAnswer&)> verdict;

  ConsulClient::AnswerHandler OnAnswer() {
    return [this](const QueryAnswer& answer) {
      std::lock_guard lock(mutex);
      answers.push_back(answer);
      bodies.emplace_back(answer.body);
      return verdict ? verdict(answer) : Status::Ok();
    };
  }
  ConsulClient::ErrorHandler OnError() {
    return [this](const Status& error) {
      std::lock_guard lock(mutex);
      errors.push_back(error);
    };
  }
  std::size_t answer_count() {
    std::lock_guard lock(mutex);
    return answers.size();
  }
  std::size_t error_count() {
    std::lock_guard lock(mutex);
    return errors.size();
  }
};

std::unique_ptr<ConsulClient> MakeClient(ConsulClientOptions options) {
  auto client = ConsulClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

// A client whose rate limits and reminders run on `clock`.
std::unique_ptr<ConsulClient> MakeClient(ConsulClientOptions options, const Clock& clock) {
  auto client = ConsulClient::Create(std::move(options), nullptr, clock);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

TEST(ConsulClient, RejectsAnAddressThatIsNotHttp) {
  ConsulClientOptions options;
  options.address = "consul:8500";
  EXPECT_EQ(ConsulClient::Create(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(ConsulClient, FirstReadIsImmediateThenBlocksOnTheReturnedIndexWithTokenDcAndStale) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    return ConsulAnswer(11 + n, "[]", milliseconds(n >= 2 ? 50 : 0));
  });
  auto options = FastOptions(peer.address());
  options.token = "t0k3n";
  options.datacenter = "dc2";
  options.stale = true;
  auto client = MakeClient(options);
  Recorder recorder;
  auto query = client->Watch("/v1/health/service/web", {{"tag", "v2"}}, recorder.OnAnswer(),
                             recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 3; }));
  query.reset();
  const auto seen = peer.Requests();
  EXPECT_EQ(seen[0].path, "/v1/health/service/web");
  EXPECT_EQ(seen[0].params.count("index"), 0u);
  EXPECT_EQ(seen[0].params.at("tag"), "v2");
  EXPECT_EQ(seen[0].params.at("dc"), "dc2");
  EXPECT_EQ(seen[0].params.count("stale"), 1u);
  EXPECT_EQ(seen[0].Header("x-consul-token"), "t0k3n");
  EXPECT_EQ(seen[1].params.at("index"), "11");
  EXPECT_EQ(seen[1].params.at("wait"), "2s");
  EXPECT_EQ(seen[2].params.at("index"), "12");
  EXPECT_EQ(recorder.answers[0].meta.index, 11u);
}

// Two sources' queries of the same path: each carries its own dc, peer,
// ns and partition, and blocks on the index its own source answered, never
// the other's (each datacenter has its own Raft log).
TEST(ConsulClient, EachScopeKeepsItsParametersAndItsOwnIndex) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest& request) {
    // dc2 is far ahead of dc1.
    const bool dc2 = request.HasParam("dc") && request.params.at("dc") == "dc2";
    return ConsulAnswer(dc2 ? 9000 + n : 10, "[]", milliseconds(n >= 2 ? 50 : 0));
  });
  auto options = FastOptions(peer.address());
  options.datacenter = "dc1";  // consul.datacenter: a scope without one uses it
  auto client = MakeClient(options);
  Recorder local, remote, peered;
  auto a = client->Watch("/v1/catalog/services", {}, local.OnAnswer(), local.OnError());
  auto b = client->Watch("/v1/catalog/services", {}, remote.OnAnswer(), remote.OnError(),
                         RequestScope{"dc2", "", "team-a", "eu"});
  auto c = client->Watch("/v1/catalog/services", {}, peered.OnAnswer(), peered.OnError(),
                         RequestScope{"", "east", "", ""});
  ASSERT_TRUE(WaitUntil([&] {
    return local.answer_count() >= 2 && remote.answer_count() >= 2 && peered.answer_count() >= 2;
  }));
  a.reset();
  b.reset();
  c.reset();
  for (const auto& request : peer.Requests()) {
    const std::string dc = request.params.count("dc") ? request.params.at("dc") : "";
    if (dc == "dc2") {
      EXPECT_EQ(request.params.at("ns"), "team-a");
      EXPECT_EQ(request.params.at("partition"), "eu");
      EXPECT_EQ(request.params.count("peer"), 0u);
      if (request.params.count("index")) {
        EXPECT_GE(std::stoull(request.params.at("index")), 9000u);
      }
    } else {
      EXPECT_EQ(dc, "dc1");
      EXPECT_EQ(request.params.count("ns"), 0u);
      EXPECT_EQ(request.params.count("partition"), 0u);
      if (request.params.count("index")) {
        EXPECT_EQ(request.params.at("index"), "10");
      }
    }
  }
  std::size_t with_peer = 0;
  for (const auto& request : peer.Requests()) with_peer += request.params.count("peer");
  EXPECT_GE(with_peer, 2u);
}

TEST(ConsulClient, IndexZeroIsReadAsOneSoTheNextRequestBlocks) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    return n == 0 ? ConsulAnswer(0) : ConsulAnswer(5, "[]", milliseconds(50));
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return peer.RequestCount() >= 2; }));
  query.reset();
  EXPECT_EQ(peer.Requests()[1].params.at("index"), "1");
}

TEST(ConsulClient, IndexGoingBackwardsIsAResetFollowedByAFreshRead) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    const std::uint64_t indexes[] = {100, 40, 41, 42, 43, 44, 45, 46, 47};
    return ConsulAnswer(indexes[std::min<std::size_t>(n, 8)], "[]", milliseconds(n >= 3 ? 50 : 0));
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 3 && peer.RequestCount() >= 4; }));
  query.reset();
  const auto seen = peer.Requests();
  EXPECT_EQ(seen[1].params.at("index"), "100");
  EXPECT_FALSE(recorder.answers[0].index_reset);
  EXPECT_TRUE(recorder.answers[1].index_reset);  // 100 → 40
  EXPECT_EQ(seen[2].params.count("index"), 0u);  // fresh, non-blocking read
  EXPECT_EQ(seen[3].params.at("index"), "41");
}

// The requests `peer` saw for `path` before the marker (a GET of /marker
// through `client`, issued now), when nothing else came of them.
::testing::AssertionResult NothingElseBeforeMarker(ConsulClient& client, const ConsulPeer& peer,
                                                   const std::string& path, std::size_t expected) {
  client.Get("/marker", [](const StatusOr<std::string>&) {});
  return test_support::NothingElseArrives(
      [&] {
        std::vector<ReceivedRequest> of_path;
        for (ReceivedRequest& request : peer.Requests()) {
          if (request.path == path || request.path == "/marker") of_path.push_back(request);
        }
        return of_path;
      },
      [](const ReceivedRequest& request) { return request.path == "/marker"; }, expected,
      milliseconds(5000));
}

TEST(ConsulClient, EarlyAnswersWithAnUnchangedIndexAreRateLimited) {
  // A broken Consul answering at once with the same index, forever.
  ConsulPeer peer([](std::size_t, const ReceivedRequest&) { return ConsulAnswer(7); });
  test_support::FakeClock clock;  // stands still: the bucket never refills
  auto options = FastOptions(peer.address());
  options.same_index_interval = std::chrono::hours(1);
  auto client = MakeClient(options, clock);
  Recorder recorder;
  auto query =
      client->Watch("/v1/health/service/gone", {}, recorder.OnAnswer(), recorder.OnError());
  // The first read, then the bucket's burst of two early answers at once;
  // the next request waits for a refill. The marker is issued once the
  // fourth answer was handled, so a fifth request would come before it.
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 4; }));
  EXPECT_TRUE(NothingElseBeforeMarker(*client, peer, "/v1/health/service/gone", 4));
}

TEST(ConsulClient, TheRateLimitRefillsOneTokenPerIntervalOfTheClientsClock) {
  ConsulPeer peer([](std::size_t, const ReceivedRequest&) { return ConsulAnswer(7); });
  test_support::FakeClock clock;
  auto options = FastOptions(peer.address());
  options.same_index_interval = std::chrono::hours(1);
  auto client = MakeClient(options, clock);
  Recorder recorder;
  int answers = 0;  // the loop thread's
  recorder.verdict = [&](const QueryAnswer&) {
    // An interval passes while the burst's second answer is handled: one
    // token comes back, so one more early answer goes through at once.
    if (++answers == 3) clock.Advance(options.same_index_interval);
    return Status::Ok();
  };
  auto query =
      client->Watch("/v1/health/service/gone", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 5; }));
  EXPECT_TRUE(NothingElseBeforeMarker(*client, peer, "/v1/health/service/gone", 5));
}

TEST(ConsulClient, ServerErrorsAreReportedBackedOffAndRecovered) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    if (n < 3) return test_support::Answer(500, "No cluster leader");
    return ConsulAnswer(9, "[]", milliseconds(n >= 4 ? 100 : 0));
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 1; }));
  query.reset();
  ASSERT_EQ(recorder.errors.size(), 3u);
  EXPECT_EQ(recorder.errors[0].code(), StatusCode::kUnavailable);
  EXPECT_EQ(recorder.errors[0].message(),
            "GET " + peer.address() + "/v1/catalog/services: HTTP 500: No cluster leader");
}

TEST(ConsulClient, ForbiddenIsPermissionDeniedWithConsulsText) {
  ConsulPeer peer([](std::size_t, const ReceivedRequest&) {
    return test_support::Answer(403, "ACL not found");
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= 2; }));  // and it keeps trying
  query.reset();
  EXPECT_EQ(recorder.errors[0].code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(recorder.errors[0].message(), HasSubstr("ACL not found"));
  // What to do about it: where the token comes from, what it must allow.
  for (const char* hint :
       {"CONSUL_HTTP_TOKEN,", "CONSUL_HTTP_TOKEN_FILE", "consul.token_file",
        "service_prefix \"\" { policy = \"read\" }", "node_prefix \"\" { policy = \"read\" }"}) {
    EXPECT_THAT(recorder.errors[0].message(), HasSubstr(hint));
  }
}

TEST(ConsulClient, ErrorsNameTheRequestAndSummarisePeerPagesOnOneLine) {
  ConsulPeer peer([](std::size_t, const ReceivedRequest&) {
    ScriptedResponse page = test_support::Answer(
        502,
        "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n"
        "<body>\n<h1>Bad Gateway</h1>\n</body>\n</html>\n");
    page.content_type = "text/html";
    return page;
  });
  ConsulClientOptions options = FastOptions(peer.address());
  // User info in the address is a secret: errors name the host only.
  options.address = "http://user:S3cretPW@" + peer.address().substr(7);
  auto client = MakeClient(options);
  Recorder recorder;
  auto query = client->Watch("/v1/health/service/web", {{"filter", "Service.Tags contains \"x\""}},
                             recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= 1; }));
  query.reset();
  EXPECT_EQ(recorder.errors[0].message(), "GET http://******@" + peer.address().substr(7) +
                                              "/v1/health/service/web: HTTP 502: 502 Bad Gateway");

  // A transport error (refused, a host that does not resolve) names the
  // address and the path as well.
  const std::string refusing = "http://127.0.0.1:" + std::to_string(UnusedLoopbackPort());
  auto nowhere = MakeClient(FastOptions(refusing));
  std::promise<Status> read;
  nowhere->Get("/v1/agent/self",
               [&read](StatusOr<std::string> answer) { read.set_value(answer.status()); });
  const Status error = read.get_future().get();
  EXPECT_EQ(error.code(), StatusCode::kUnavailable);
  EXPECT_THAT(error.message(), ::testing::StartsWith("GET " + refusing + "/v1/agent/self: "));
}

TEST(ConsulClient, AfterAnErrorTheQueryReadsAfreshSoAConsulThatIsBackIsSeenAtOnce) {
  // A Consul that is back holds a blocking read on the last index until
  // something changes (up to `wait`): the first try after an error must not
  // block, or nobody learns that Consul answers again.
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    return n == 2 ? test_support::Answer(500) : ConsulAnswer(7);
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return peer.RequestCount() >= 5; }));
  query.reset();
  const auto seen = peer.Requests();
  EXPECT_EQ(seen[2].params.at("index"), "7") << "a blocking read failed";
  EXPECT_FALSE(seen[3].params.contains("index")) << "the first try after it reads afresh";
  EXPECT_EQ(seen[4].params.at("index"), "7") << "then it blocks again";
  EXPECT_EQ(recorder.errors.size(), 1U);
}

TEST(ConsulClient, AnOutageIsRemindedOfAtWarnWhileItLasts) {
  // The log as the bridge's default logger, kept in memory.
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", lines));
  auto logged = [&lines](const std::string& text) {
    for (const std::string& line : lines->last_formatted()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  };
  const std::string refusing = "http://127.0.0.1:" + std::to_string(UnusedLoopbackPort());
  ConsulClientOptions options = FastOptions(refusing);
  options.outage_reminder_interval = std::chrono::hours(1);
  test_support::FakeClock clock;
  {
    auto client = MakeClient(options, clock);
    Recorder recorder;
    auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
    // Failures within an interval of the outage's start are the caller's to log.
    ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= 3; }));
    EXPECT_FALSE(logged("Consul requests still fail after"));
    clock.Advance(options.outage_reminder_interval);
    EXPECT_TRUE(WaitUntil([&] { return logged("Consul requests still fail after 3600 s"); }));
    query.reset();
  }
  // The request, then curl's own text ("Failed to connect to ... port N ...",
  // or its generic "Couldn't connect to server").
  EXPECT_TRUE(logged("GET " + refusing + "/v1/catalog/services: "));
  EXPECT_TRUE(logged("onnect to"));
  EXPECT_TRUE(logged("(consul.retry.max_backoff)"));
  spdlog::set_default_logger(previous);
}

TEST(ConsulClient, AForbiddenAnswerRereadsTheTokenFileAtMostOncePerSecondOfItsClock) {
  const test_support::TestDir dir("hb-consul-token");
  const std::filesystem::path token_file = dir / "token";
  std::ofstream(token_file) << "old\n";
  // Consul takes the new token only.
  ConsulPeer peer([](std::size_t, const ReceivedRequest& request) {
    return request.Header("x-consul-token") == "new" ? ConsulAnswer(3)
                                                     : test_support::Answer(403, "ACL not found");
  });
  test_support::FakeClock clock;
  auto options = FastOptions(peer.address());
  options.token = "old";
  options.token_file = token_file.string();
  auto client = MakeClient(options, clock);
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  // The first 403 read the file again (before its error was reported): it
  // still held the old token. Then the token is rotated.
  ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= 1; }));
  std::ofstream(token_file) << "new\n";
  // Within a second of the client's clock, later 403s leave the file alone.
  const std::size_t errors = recorder.error_count();
  ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= errors + 3; }));
  EXPECT_EQ(recorder.answer_count(), 0u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 1; }));
  query.reset();
  EXPECT_EQ(peer.Requests().back().Header("x-consul-token"), "new");
}

TEST(ConsulClient, ConnectionRefusedIsUnavailableAndRetried) {
  const int port = UnusedLoopbackPort();
  auto client = MakeClient(FastOptions("http://127.0.0.1:" + std::to_string(port)));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= 3; }));
  query.reset();
  EXPECT_EQ(recorder.errors[0].code(), StatusCode::kUnavailable);
}

TEST(ConsulClient, ABlockingRequestThatHangsPastWaitTimesOutAndIsRetried) {
  ConsulPeer peer([](std::size_t, const ReceivedRequest& request) {
    // A blocking read hangs far past wait + wait/16 + margin.
    return request.HasParam("index") ? HeldAnswer(3) : ConsulAnswer(3);
  });
  auto options = FastOptions(peer.address());
  options.wait = milliseconds(200);
  options.timeout_margin = milliseconds(100);
  auto client = MakeClient(options);
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.error_count() >= 1; }));
  query.reset();
  EXPECT_EQ(recorder.errors[0].code(), StatusCode::kDeadlineExceeded);
}

TEST(ConsulClient, UnusableBodyIsRetriedWithoutAdvancingTheIndex) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    return ConsulAnswer(21 + n, "[]", milliseconds(n >= 3 ? 50 : 0));
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  int verdicts = 0;
  recorder.verdict = [&](const QueryAnswer&) {
    return ++verdicts == 2 ? Status::InvalidArgument("malformed") : Status::Ok();
  };
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return peer.RequestCount() >= 4; }));
  query.reset();
  const auto seen = peer.Requests();
  EXPECT_EQ(seen[1].params.at("index"), "21");
  // The rejected answer (22) did not count: after a failure the query reads
  // afresh (a blocking read on an unchanged index would be held), then
  // blocks on what that read returned.
  EXPECT_FALSE(seen[2].params.contains("index"));
  EXPECT_EQ(seen[3].params.at("index"), "23");
  EXPECT_EQ(recorder.errors.size(), 1u);
}

TEST(ConsulClient, ManyBlockingQueriesShareOneLoopThreadAndAreAllAnswered) {
  // Each held query costs the peer a thread, which sanitizers make slow to
  // start: a minute for 300 under ASan at -O0.
  constexpr int kQueries = test_support::kSanitizerBuild ? 60 : 300;
  std::mutex held_mutex;
  std::set<std::string> held_paths;  // a retried query is counted once
  auto held = [&] {
    std::lock_guard lock(held_mutex);
    return static_cast<int>(held_paths.size());
  };
  // One server thread per connection: room for every held long-poll plus
  // the idle keep-alive connections of the first reads.
  constexpr int kPeerThreads = 2 * kQueries + 20;
  ConsulPeer peer(
      [&](std::size_t, const ReceivedRequest& request) {
        if (!request.HasParam("index")) return ConsulAnswer(1);
        std::lock_guard lock(held_mutex);
        held_paths.insert(request.path);
        return HeldAnswer(2);
      },
      kPeerThreads);
  auto count_threads = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                         std::filesystem::directory_iterator{});
  };
  // The peer's pool starts its threads in the background; this process has
  // them plus the main and listener threads once it is up.
  ASSERT_TRUE(WaitUntil([&] { return count_threads() >= kPeerThreads + 2; }));
  const auto threads_before = count_threads();
  auto options = FastOptions(peer.address());
  options.wait = milliseconds(60000);  // held until all have arrived, never timed out
  options.max_connections = 0;         // this test is about the loop, not the budget
  auto client = MakeClient(options);
  std::vector<std::unique_ptr<BlockingQuery>> queries;
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (int i = 0; i < kQueries; ++i) {
    recorders.push_back(std::make_unique<Recorder>());
    queries.push_back(client->Watch("/v1/health/service/s" + std::to_string(i), {},
                                    recorders.back()->OnAnswer(), recorders.back()->OnError()));
  }
  ASSERT_TRUE(WaitUntil([&] { return held() == kQueries; }, milliseconds(20000)))
      << held() << " of " << kQueries << " blocking requests arrived";
  EXPECT_EQ(count_threads(), threads_before + 1);  // all on the client's one loop thread
  peer.Stop();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return std::all_of(recorders.begin(), recorders.end(),
                           [](const auto& r) { return r->answer_count() >= 2; });
      },
      milliseconds(20000)));
  queries.clear();
}

TEST(ConsulClient, NeverHoldsMoreConnectionsThanMaxConnections) {
  constexpr int kQueries = 30;
  constexpr int kCap = 10;
  std::mutex ports_mutex;
  std::set<int> open_ports;  // client ports the peer saw: one per connection
  std::atomic<int> held{0};
  ConsulPeer peer(
      [&](std::size_t, const ReceivedRequest& request) {
        {
          std::lock_guard lock(ports_mutex);
          open_ports.insert(request.remote_port);
        }
        if (!request.HasParam("index")) return ConsulAnswer(1);
        ++held;
        return HeldAnswer(2);
      },
      2 * kQueries + 10);
  auto options = FastOptions(peer.address());
  options.wait = milliseconds(60000);
  options.max_connections = kCap;
  auto client = MakeClient(options);
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<std::unique_ptr<BlockingQuery>> queries;
  for (int i = 0; i < kQueries; ++i) {
    recorders.push_back(std::make_unique<Recorder>());
    queries.push_back(client->Watch("/v1/health/service/s" + std::to_string(i), {},
                                    recorders.back()->OnAnswer(), recorders.back()->OnError()));
  }
  ASSERT_TRUE(WaitUntil([&] { return held.load() == kCap; }));
  // The rest wait in curl for a connection instead of opening more: the
  // peer sees no other connection now, nor over the whole test (below).
  {
    std::lock_guard lock(ports_mutex);
    EXPECT_LE(open_ports.size(), static_cast<std::size_t>(kCap));
  }
  peer.Stop();
  ASSERT_TRUE(WaitUntil([&] {
    return std::all_of(recorders.begin(), recorders.end(),
                       [](const auto& r) { return r->answer_count() >= 2; });
  }));
  std::lock_guard lock(ports_mutex);
  EXPECT_LE(open_ports.size(), static_cast<std::size_t>(kCap));
}

TEST(ConsulClient, ARetiredQueryFinishesItsRequestThenStopsWithoutAnswering) {
  std::atomic<int> blocking{0};
  ConsulPeer peer([&](std::size_t, const ReceivedRequest& request) {
    if (!request.HasParam("index")) return ConsulAnswer(1);
    ++blocking;
    return HeldAnswer(2);
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/health/service/web", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return blocking.load() == 1; }));
  std::atomic<bool> retired{false};
  client->loop().Post([&] { query->Retire([&] { retired = true; }); });
  // A marker posted from a task that runs after Retire(): a retirement
  // finished at once would have been posted before it.
  std::promise<void> marker;
  client->loop().Post([&] { client->loop().Post([&] { marker.set_value(); }); });
  ASSERT_EQ(marker.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(retired.load());  // the held request is not abandoned
  peer.Stop();
  ASSERT_TRUE(WaitUntil([&] { return retired.load(); }));
  EXPECT_EQ(recorder.answer_count(), 1u);  // the held answer is not handed over
  EXPECT_EQ(peer.RequestCount(), 2u);      // and nothing follows it
  query.reset();
}

class RefusalCounter : public RequestObserver {
 public:
  void OnRequestDone(std::string_view, std::string_view, std::chrono::duration<double>,
                     bool) override {}
  void OnRefused(std::string_view reason) override {
    std::lock_guard lock(mutex_);
    reasons_.emplace_back(reason);
  }
  std::vector<std::string> reasons() {
    std::lock_guard lock(mutex_);
    return reasons_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> reasons_;
};

TEST(ConsulClient, TooManyConnectionsIsCountedBackedOffAndRecovered) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    if (n >= 3) return ConsulAnswer(5);
    // Consul's connection limiter sends no Retry-After: the backoff is ours.
    return test_support::Answer(
        429, "Your IP is issuing too many concurrent connections, please rate limit your calls\n");
  });
  RefusalCounter counter;
  auto client = ConsulClient::Create(FastOptions(peer.address()), &counter);
  ASSERT_TRUE(client.ok());
  Recorder recorder;
  const auto started = std::chrono::steady_clock::now();
  auto query =
      (*client)->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 1; }));
  // Three refusals, each backed off (10, 20, 40 ms ±20%): never a hot loop.
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(50));
  EXPECT_EQ(counter.reasons(), std::vector<std::string>(3, "too_many_connections"));
  std::lock_guard lock(recorder.mutex);
  ASSERT_EQ(recorder.errors.size(), 3u);
  EXPECT_EQ(recorder.errors[0].code(), StatusCode::kUnavailable);
  EXPECT_THAT(recorder.errors[0].message(), HasSubstr("429"));
}

class OutcomeRecorder : public RequestObserver {
 public:
  void OnRequestDone(std::string_view, std::string_view outcome, std::chrono::duration<double>,
                     bool) override {
    std::lock_guard lock(mutex_);
    outcomes_.emplace_back(outcome);
  }
  std::vector<std::string> outcomes() {
    std::lock_guard lock(mutex_);
    return outcomes_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> outcomes_;
};

TEST(ConsulClient, AnAnswerLargerThanTheCapAfterDecompressionIsAnErrorBackedOff) {
  std::mutex encodings_mutex;
  std::vector<std::string> encodings;
  ConsulPeer peer([&](std::size_t n, const ReceivedRequest& request) {
    {
      std::lock_guard lock(encodings_mutex);
      encodings.push_back(request.Header("accept-encoding"));
    }
    // 4 MiB of whitespace around [] : a few KB once gzipped.
    return n < 2 ? ConsulAnswer(3, std::string(4 << 20, ' ') + "[]") : ConsulAnswer(4);
  });
  OutcomeRecorder outcomes;
  auto options = FastOptions(peer.address());
  options.max_answer_bytes = 64 << 10;
  auto client = ConsulClient::Create(options, &outcomes);
  ASSERT_TRUE(client.ok());
  Recorder recorder;
  auto query =
      (*client)->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 1; }));
  query.reset();
  {
    std::lock_guard lock(recorder.mutex);
    ASSERT_EQ(recorder.errors.size(), 2u);
    EXPECT_EQ(recorder.errors[0].code(), StatusCode::kResourceExhausted);
    EXPECT_THAT(recorder.errors[0].message(), HasSubstr("larger than 65536 bytes"));
    EXPECT_EQ(recorder.answers[0].meta.index, 4u);  // the over-size answers were never used
  }
  const auto seen = outcomes.outcomes();
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "too_large"), 2);
  // Consul compresses with gzip only: nothing else is offered.
  std::lock_guard lock(encodings_mutex);
  for (const auto& encoding : encodings) EXPECT_EQ(encoding, "gzip");
}

TEST(QueryMeta, IndexIsParsedStrictly) {
  auto parse = [](const std::string& index) { return ParseQueryMeta({{"x-consul-index", index}}); };
  EXPECT_EQ(parse("42")->index, 42u);
  EXPECT_EQ(parse("0")->index, 1u);  // never block on 0
  EXPECT_EQ(parse("18446744073709551615")->index, 18446744073709551615u);
  for (const std::string bad :
       {"", "-1", "+5", " 5", "5 ", "0x10", "1e3", "18446744073709551616"}) {
    EXPECT_FALSE(parse(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseQueryMeta({}).ok());
  auto meta = ParseQueryMeta(
      {{"x-consul-index", "7"}, {"x-consul-knownleader", "false"}, {"x-consul-lastcontact", "-3"}});
  ASSERT_TRUE(meta.ok());
  EXPECT_FALSE(meta->known_leader);
  EXPECT_EQ(meta->last_contact, milliseconds(0));  // a negative contact is ignored
}

TEST(RetryAfter, IsClampedAndOverflowSafe) {
  const auto limit = milliseconds(std::chrono::minutes(10));
  EXPECT_EQ(ParseRetryAfter("5", limit), milliseconds(5000));
  EXPECT_EQ(ParseRetryAfter(" 5 ", limit), milliseconds(5000));
  EXPECT_EQ(ParseRetryAfter("86400", limit), limit);
  EXPECT_EQ(ParseRetryAfter("9000000000000", limit), limit);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999999", limit), limit);
  EXPECT_EQ(ParseRetryAfter("-1", limit), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", limit), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", limit), std::nullopt);
}

TEST(ConsulClient, ReusesKeepAliveConnections) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) { return ConsulAnswer(n + 1); });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return peer.RequestCount() >= 20; }));
  query.reset();
  std::set<int> connections;
  for (const auto& seen : peer.Requests()) connections.insert(seen.remote_port);
  EXPECT_LE(connections.size(), 2u);
}

TEST(ConsulClient, DestroyingAQueryStopsItAndNoCallbackFollows) {
  ConsulPeer peer([](std::size_t n, const ReceivedRequest&) {
    return ConsulAnswer(n + 1, "[]", milliseconds(20));
  });
  auto client = MakeClient(FastOptions(peer.address()));
  Recorder recorder;
  auto query = client->Watch("/v1/catalog/services", {}, recorder.OnAnswer(), recorder.OnError());
  ASSERT_TRUE(WaitUntil([&] { return recorder.answer_count() >= 2; }));
  query.reset();
  const std::size_t answers = recorder.answer_count();
  const std::size_t calls = peer.RequestCount();
  // A marker read, sent and answered (after the same delay) after the
  // request in flight: whatever the destroyed query could still do would
  // have happened before its answer.
  std::promise<void> marker_answered;
  client->Get("/marker", [&](const StatusOr<std::string>&) { marker_answered.set_value(); });
  ASSERT_EQ(marker_answered.get_future().wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
  EXPECT_EQ(recorder.answer_count(), answers);
  const auto before_marker = test_support::ArrivedBeforeMarker(
      [&] { return peer.Requests(); },
      [](const ReceivedRequest& request) { return request.path == "/marker"; }, milliseconds(5000));
  ASSERT_TRUE(before_marker.has_value());
  EXPECT_LE(before_marker->size(), calls + 1);  // at most the request already in flight
}

TEST(ConsulClient, GetReturnsTheBodyOrAnError) {
  ConsulPeer peer([](std::size_t, const ReceivedRequest& request) {
    if (request.path != "/v1/agent/self") return test_support::Answer(404);
    ScriptedResponse self = test_support::Answer(200, R"({"Config": {"Datacenter": "dc1"}})");
    self.content_type = "application/json";
    return self;
  });
  auto client = MakeClient(FastOptions(peer.address()));
  std::promise<StatusOr<std::string>> self;
  client->Get("/v1/agent/self",
              [&](StatusOr<std::string> body) { self.set_value(std::move(body)); });
  auto body = self.get_future().get();
  ASSERT_TRUE(body.ok());
  EXPECT_THAT(*body, HasSubstr("dc1"));
  std::promise<StatusOr<std::string>> missing;
  client->Get("/v1/nope",
              [&](StatusOr<std::string> result) { missing.set_value(std::move(result)); });
  EXPECT_EQ(missing.get_future().get().status().code(), StatusCode::kNotFound);
}

TEST(PercentEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(PercentEncode("web-api_v2.~"), "web-api_v2.~");
  EXPECT_EQ(PercentEncode("my service/x?y"), "my%20service%2Fx%3Fy");
  EXPECT_EQ(PercentEncode("\xC3\xA9"), "%C3%A9");
}

TEST(EndpointLabel, IsLowCardinality) {
  EXPECT_EQ(EndpointLabel("/v1/health/service/payments"), "health_service");
  EXPECT_EQ(EndpointLabel("/v1/catalog/services"), "catalog_services");
  EXPECT_EQ(EndpointLabel("/v1/agent/self"), "agent_self");
  EXPECT_EQ(EndpointLabel("/v1/health/state/any"), "health_state");
  EXPECT_EQ(EndpointLabel("/v1/kv/x"), "other");
}

}  // namespace
}  // namespace hb

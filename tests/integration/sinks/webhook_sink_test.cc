// The webhook sink against a real HTTP receiver on loopback.

#include "sinks/webhook/webhook_sink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bridge/router/router.h"
#include "bridge/router/sink_worker.h"
#include "sinks/webhook/webhook_signature.h"
#include "tests/support/dead_letters.h"
#include "tests/support/eventually.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/child_process.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::Answer;
using test_support::InstanceEvent;
using test_support::ReceivedRequest;
using test_support::ScriptedHttpPeer;
using test_support::ScriptedResponse;
using test_support::Shared;
using Kind = DeliveryResult::Kind;

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// Standard Webhooks verification as a receiver would write it, in Python's
// standard library: nothing shared with the sink's OpenSSL code.
std::string IndependentSignature(const std::string& secret, const ReceivedRequest& request) {
  const auto result = test_support::RunToCompletion(
      "/usr/bin/env",
      {"python3", "-c",
       // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one script, several lines
       "import base64, hashlib, hmac, sys\n"
       "key = base64.b64decode(sys.argv[1].removeprefix('whsec_'))\n"
       "message = ('%s.%s.%s' % tuple(sys.argv[2:5])).encode()\n"
       "print('v1,' + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode())",
       secret, request.Header("webhook-id"), request.Header("webhook-timestamp"), request.body});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return result.out.substr(0, result.out.find('\n'));
}

class WebhookSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("webhook_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  WebhookSinkSettings Settings(const ScriptedHttpPeer& receiver) const {
    WebhookSinkSettings settings;
    settings.url = receiver.url();
    settings.timeout = seconds(5);
    return settings;
  }

  std::unique_ptr<WebhookSink> NewSink(const WebhookSinkSettings& settings,
                                       const std::string& name = "ops-hooks") {
    auto sink = WebhookSink::Create(name, settings, CloudEventOptions{}, clock_);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return std::move(sink).value();
  }

  DeliveryResult DeliverOne(WebhookSink& sink, const Event& event) {
    std::vector<EventPtr> batch{Shared(event)};
    std::vector<DeliveryResult> results(1);
    sink.Deliver(batch, results);
    return results[0];
  }

  SinkStorage DeadLetters(const std::string& sink) {
    return test_support::DeadLetterStorage(dir_, sink);
  }
  std::vector<nlohmann::json> ReadDeadLetters(const std::string& sink) {
    return test_support::ReadDeadLetters(dir_, sink);
  }

  static SinkWorkerOptions FastRetries() {
    SinkWorkerOptions options;
    options.retry.initial_backoff = milliseconds(50);
    options.retry.max_backoff = milliseconds(200);
    return options;
  }

  SystemClock clock_;
  std::filesystem::path dir_;
};

TEST_F(WebhookSinkTest, PostsTheCloudEventSignedSoAnIndependentVerifierAcceptsIt) {
  ScriptedHttpPeer receiver;
  WebhookSinkSettings settings = Settings(receiver);
  settings.secret = kSecret;
  settings.bearer_token = "hook-token";
  settings.headers = {{"X-Team", "payments"}};
  auto sink = NewSink(settings);
  const Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);

  ASSERT_EQ(DeliverOne(*sink, event).kind, Kind::kOk);
  const auto requests = receiver.Accepted();
  ASSERT_EQ(requests.size(), 1U);
  const ReceivedRequest& request = requests[0];
  EXPECT_EQ(request.path, "/hook");
  EXPECT_EQ(request.body, SerializeCloudEvent(event, CloudEventOptions{}));
  EXPECT_EQ(request.Header("content-type"), "application/cloudevents+json");
  EXPECT_EQ(request.Header("webhook-id"), event.id);
  const auto sent_at = std::stoll(request.Header("webhook-timestamp"));
  const auto now =
      std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_LE(std::abs(now - sent_at), 300) << "outside the receivers' replay window";
  EXPECT_EQ(request.Header("webhook-signature"), IndependentSignature(kSecret, request));
  EXPECT_EQ(request.Header("authorization"), "Bearer hook-token");
  EXPECT_EQ(request.Header("x-team"), "payments");
  EXPECT_TRUE(request.Header("user-agent").starts_with("health-bridge/"));
}

TEST_F(WebhookSinkTest, RawSecretSignsWithItsBytesAndNoSecretSendsNoSignature) {
  ScriptedHttpPeer receiver;
  WebhookSinkSettings settings = Settings(receiver);
  settings.secret = "a raw shared secret";
  ASSERT_EQ(DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 3)).kind,
            Kind::kOk);
  settings.secret.clear();
  ASSERT_EQ(DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 4)).kind,
            Kind::kOk);

  const auto requests = receiver.Accepted();
  ASSERT_EQ(requests.size(), 2U);
  // The Python verifier strips a whsec_ prefix only, so a raw secret is
  // used as it is, as the sink must.
  EXPECT_EQ(requests[0].Header("webhook-signature"),
            IndependentSignature("whsec_" + Base64Encode("a raw shared secret"), requests[0]));
  EXPECT_EQ(requests[1].Header("webhook-signature"), "");
  EXPECT_EQ(requests[1].Header("webhook-id"), "dc1/node-a/p-1/4/instance.up");
}

TEST_F(WebhookSinkTest, BasicAuthSendsTheCredentials) {
  ScriptedHttpPeer receiver;
  WebhookSinkSettings settings = Settings(receiver);
  settings.basic_username = "bridge";
  settings.basic_password = "s3cret";
  ASSERT_EQ(DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 3)).kind,
            Kind::kOk);
  EXPECT_EQ(receiver.Accepted().at(0).Header("authorization"),
            "Basic " + Base64Encode("bridge:s3cret"));
}

TEST_F(WebhookSinkTest, RetriesThrottlingAndServerErrorsHonouringRetryAfter) {
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  ScriptedHttpPeer receiver([&arrivals](std::size_t n, const ReceivedRequest&) {
    arrivals.push_back(std::chrono::steady_clock::now());
    switch (n) {
      case 0:
        return Answer(503);
      case 1:
        return Answer(429, "slow down", "1");
      case 2:
        return Answer(408);
      default:
        return Answer(204);
    }
  });
  auto dead_letters = DeadLetters("ops-hooks");
  SinkWorker worker(FastRetries(), NewSink(Settings(receiver)), dead_letters, clock_, nullptr);
  const Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  ASSERT_TRUE(worker.Enqueue(Shared(event)));

  ASSERT_TRUE(receiver.WaitForAccepted(1, seconds(20)));
  EXPECT_EQ(receiver.RequestCount(), 4U);
  EXPECT_EQ(receiver.Accepted()[0].Header("webhook-id"), event.id) << "stable across retries";
  // Retry-After: 1 beats the 50 ms backoff.
  ASSERT_GE(arrivals.size(), 3U);
  EXPECT_GE(arrivals[2] - arrivals[1], milliseconds(1000));
  EXPECT_EQ(worker.Shutdown(seconds(5)), 0U);
  EXPECT_TRUE(ReadDeadLetters("ops-hooks").empty());
}

TEST_F(WebhookSinkTest, PermanentClientErrorIsDeadLetteredWithTheReceiversWords) {
  ScriptedHttpPeer receiver([](std::size_t, const ReceivedRequest&) {
    return Answer(422, "unknown field \"partitionkey\"");
  });
  auto dead_letters = DeadLetters("ops-hooks");
  SinkWorker worker(FastRetries(), NewSink(Settings(receiver)), dead_letters, clock_, nullptr);
  ASSERT_TRUE(worker.Enqueue(Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 9))));
  EXPECT_EQ(worker.Shutdown(seconds(10)), 0U);

  EXPECT_EQ(receiver.RequestCount(), 1U) << "a 4xx is not retried";
  const auto lines = ReadDeadLetters("ops-hooks");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0]["reason"], "rejected: POST " + Settings(receiver).url +
                                    ": HTTP 422: unknown field \"partitionkey\"");
  EXPECT_EQ(lines[0]["attempts"], 1);
}

TEST_F(WebhookSinkTest, GoneEndpointIsPermanent) {
  ScriptedHttpPeer receiver([](std::size_t, const ReceivedRequest&) { return Answer(410); });
  const auto result =
      DeliverOne(*NewSink(Settings(receiver)), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(result.kind, Kind::kReject);
  EXPECT_NE(result.error.find("410"), std::string::npos);
}

TEST_F(WebhookSinkTest, RedirectIsNotFollowedByDefault) {
  ScriptedHttpPeer receiver([](std::size_t, const ReceivedRequest&) { return Answer(302); });
  const auto result =
      DeliverOne(*NewSink(Settings(receiver)), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(result.kind, Kind::kRetry);
  EXPECT_NE(result.error.find("redirects are not followed"), std::string::npos) << result.error;
  EXPECT_EQ(receiver.RequestCount(), 1U);
}

ScriptedResponse RedirectTo(const std::string& url) {
  ScriptedResponse answer = Answer(307);
  answer.headers.emplace_back("Location", url);
  return answer;
}

TEST_F(WebhookSinkTest, ARedirectToAnotherOriginGetsTheSignedEventButNoCredentials) {
  ScriptedHttpPeer elsewhere;
  ScriptedHttpPeer first(
      [&](std::size_t, const ReceivedRequest&) { return RedirectTo(elsewhere.url("/moved")); });
  WebhookSinkSettings settings = Settings(first);
  settings.follow_redirects = true;
  settings.secret = kSecret;
  settings.bearer_token = "bearer-secret";
  settings.headers["X-Api-Key"] = "key-secret";
  const auto result =
      DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(result.kind, Kind::kOk) << result.error;
  ASSERT_EQ(elsewhere.Accepted().size(), 1U);
  const ReceivedRequest moved = elsewhere.Accepted()[0];
  EXPECT_EQ(moved.path, "/moved");
  EXPECT_EQ(moved.Header("authorization"), "");
  EXPECT_EQ(moved.Header("x-api-key"), "");
  EXPECT_EQ(moved.Header("webhook-signature"), IndependentSignature(kSecret, moved));
}

TEST_F(WebhookSinkTest, ARedirectWithinTheOriginKeepsTheCredentials) {
  ScriptedHttpPeer receiver([](std::size_t n, const ReceivedRequest&) {
    return n == 0 ? ScriptedResponse{} : Answer(204);
  });
  receiver.SetScript([&receiver](std::size_t n, const ReceivedRequest&) {
    return n == 0 ? RedirectTo(receiver.url("/v2/hook")) : Answer(204);
  });
  WebhookSinkSettings settings = Settings(receiver);
  settings.follow_redirects = true;
  settings.bearer_token = "bearer-secret";
  settings.headers["X-Api-Key"] = "key-secret";
  const auto result =
      DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(result.kind, Kind::kOk) << result.error;
  ASSERT_EQ(receiver.Accepted().size(), 1U);
  EXPECT_EQ(receiver.Accepted()[0].path, "/v2/hook");
  EXPECT_EQ(receiver.Accepted()[0].Header("authorization"), "Bearer bearer-secret");
  EXPECT_EQ(receiver.Accepted()[0].Header("x-api-key"), "key-secret");
}

TEST_F(WebhookSinkTest, ARedirectLoopEndsAfterAFewHops) {
  ScriptedHttpPeer receiver;
  receiver.SetScript([&receiver](std::size_t, const ReceivedRequest&) {
    return RedirectTo(receiver.url("/again"));
  });
  WebhookSinkSettings settings = Settings(receiver);
  settings.follow_redirects = true;
  const auto result =
      DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(result.kind, Kind::kRetry);
  EXPECT_NE(result.error.find("redirects"), std::string::npos) << result.error;
  EXPECT_EQ(receiver.RequestCount(), 6U);
}

TEST_F(WebhookSinkTest, AHugeAnswerIsNotReadToItsEndAndItsStatusStillCounts) {
  ScriptedHttpPeer receiver(
      [](std::size_t, const ReceivedRequest&) { return Answer(200, std::string(32 << 20, 'x')); });
  const auto ok =
      DeliverOne(*NewSink(Settings(receiver)), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(ok.kind, Kind::kOk) << ok.error;
  receiver.SetScript(
      [](std::size_t, const ReceivedRequest&) { return Answer(400, std::string(32 << 20, 'y')); });
  const auto rejected =
      DeliverOne(*NewSink(Settings(receiver)), InstanceEvent("p-1", EventType::kInstanceUp, 2));
  EXPECT_EQ(rejected.kind, Kind::kReject);
  EXPECT_LT(rejected.error.size(), 1024U) << "the error quotes only the answer's start";
}

TEST_F(WebhookSinkTest, HangingReceiverTimesOutAndTheEventIsRetried) {
  ScriptedHttpPeer receiver([](std::size_t n, const ReceivedRequest&) {
    return n == 0 ? Answer(204, "", "", seconds(10)) : Answer(204);
  });
  WebhookSinkSettings settings = Settings(receiver);
  settings.timeout = milliseconds(300);
  auto dead_letters = DeadLetters("ops-hooks");
  SinkWorker worker(FastRetries(), NewSink(settings), dead_letters, clock_, nullptr);
  const Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 5);
  ASSERT_TRUE(worker.Enqueue(Shared(event)));

  ASSERT_TRUE(receiver.WaitForAccepted(1, seconds(20)));
  EXPECT_EQ(receiver.RequestCount(), 2U);
  EXPECT_EQ(receiver.Accepted().back().Header("webhook-id"), event.id);
  EXPECT_EQ(worker.Shutdown(seconds(5)), 0U);
}

TEST_F(WebhookSinkTest, ShutdownAbortsARequestTheReceiverHoldsAndKeepsTheEvent) {
  ScriptedHttpPeer receiver(
      [](std::size_t, const ReceivedRequest&) { return Answer(204, "", "", seconds(30)); });
  WebhookSinkSettings settings = Settings(receiver);
  settings.timeout = seconds(60);
  auto dead_letters = DeadLetters("ops-hooks");
  SinkWorker worker(FastRetries(), NewSink(settings), dead_letters, clock_, nullptr);
  ASSERT_TRUE(worker.Enqueue(Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 5))));
  ASSERT_TRUE(test_support::Eventually([&] { return receiver.RequestCount() > 0; }, seconds(10)));

  // The request would hang for 30 s; the grace period is 200 ms.
  EXPECT_EQ(worker.Shutdown(milliseconds(200)), 1U);
  const auto lines = ReadDeadLetters("ops-hooks");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0]["reason"], "undelivered at shutdown");
  receiver.Stop();
}

TEST_F(WebhookSinkTest, UnreachableReceiverIsRetriable) {
  WebhookSinkSettings settings;
  // Nothing listens on port 1.
  settings.url = "http://hook-user:HookPW@127.0.0.1:1/hook?api_key=QuerySecret";
  const auto result =
      DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  EXPECT_EQ(result.kind, Kind::kRetry);
  // The target is named, its secrets masked.
  EXPECT_THAT(result.error,
              ::testing::StartsWith("POST http://******@127.0.0.1:1/hook?****** failed: "));
  EXPECT_EQ(result.error.find("HookPW"), std::string::npos) << result.error;
  EXPECT_EQ(result.error.find("QuerySecret"), std::string::npos) << result.error;
}

TEST_F(WebhookSinkTest, ProbeConnectsWithoutSendingAndNamesATargetThatRefuses) {
  ScriptedHttpPeer receiver;
  EXPECT_EQ(NewSink(Settings(receiver))->Probe(), "");
  EXPECT_EQ(receiver.RequestCount(), 0U) << "a probe sends no request";
  WebhookSinkSettings refusing;
  refusing.url = "http://hook-user:HookPW@127.0.0.1:1/hook";  // nothing listens on port 1
  const std::string problem = NewSink(refusing)->Probe();
  EXPECT_THAT(problem,
              ::testing::StartsWith("connecting to http://******@127.0.0.1:1/hook failed: "));
  EXPECT_EQ(problem.find("HookPW"), std::string::npos);
}

TEST_F(WebhookSinkTest, ProxyFromTheStandardEnvironmentVariableIsUsed) {
  ScriptedHttpPeer proxy;  // an HTTP proxy is sent the absolute URL
  ::setenv("http_proxy", proxy.url("").c_str(), 1);
  ::setenv("no_proxy", "", 1);
  ::setenv("NO_PROXY", "", 1);
  WebhookSinkSettings settings;
  settings.url = "http://hooks.example.invalid/consul";  // only the proxy resolves it
  const auto result =
      DeliverOne(*NewSink(settings), InstanceEvent("p-1", EventType::kInstanceUp, 1));
  ::unsetenv("http_proxy");
  ASSERT_EQ(result.kind, Kind::kOk) << result.error;
  ASSERT_EQ(proxy.Accepted().size(), 1U);
  EXPECT_EQ(proxy.Accepted()[0].Header("host"), "hooks.example.invalid");
}

TEST_F(WebhookSinkTest, SlowReceiverOnOneSinkDoesNotHoldBackAnother) {
  ScriptedHttpPeer slow(
      [](std::size_t, const ReceivedRequest&) { return Answer(204, "", "", seconds(3)); });
  ScriptedHttpPeer fast;
  Router router(clock_);
  for (const auto* receiver : {&slow, &fast}) {
    const std::string name = receiver == &slow ? "slow" : "fast";
    router.AddSink(SinkRoute{}, NewSink(Settings(*receiver), name), DeadLetters(name));
  }
  std::vector<Event> events;
  for (int i = 0; i < 5; ++i) {
    events.push_back(InstanceEvent("payments-" + std::to_string(i), EventType::kInstanceDown, 7));
  }
  router.Publish(events);

  ASSERT_TRUE(fast.WaitForAccepted(5, seconds(10)));
  EXPECT_LE(slow.Accepted().size(), 1U);
  slow.Stop();  // let the slow receiver answer at once, so shutdown is quick
  EXPECT_EQ(router.Shutdown(seconds(10)), 0U);
}

}  // namespace
}  // namespace hb

// The webhook sink's pure parts: Standard Webhooks signatures, how answers
// are classified, Retry-After.

#include <gtest/gtest.h>

#include "sinks/webhook/webhook_signature.h"
#include "sinks/webhook/webhook_sink.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = DeliveryResult::Kind;

TEST(WebhookSignatureTest, MatchesTheStandardWebhooksReferenceExample) {
  // The example of the Standard Webhooks specification and its libraries.
  const auto key = WebhookSigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key);
  EXPECT_EQ(
      SignWebhook(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignatureTest, SecretWithoutPrefixIsTheKeyAsIs) {
  EXPECT_EQ(WebhookSigningKey("plain text secret"), "plain text secret");
  EXPECT_EQ(WebhookSigningKey("whsec_aGVsbG8="), "hello");
  EXPECT_EQ(WebhookSigningKey("whsec_not base64!"), std::nullopt);
}

TEST(WebhookSignatureTest, Base64RoundTripsEveryPaddingLength) {
  for (const std::string& text :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(Base64Decode(Base64Encode(text)), text);
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64Decode("abc"), std::nullopt);
}

struct ClassifyCase {
  long status;
  Kind kind;
};

class ClassifyWebhookResponseTest : public ::testing::TestWithParam<ClassifyCase> {};

TEST_P(ClassifyWebhookResponseTest, FollowsStandardWebhooksStatusHandling) {
  const auto result = ClassifyWebhookResponse(GetParam().status, "", std::nullopt);
  EXPECT_EQ(result.kind, GetParam().kind) << "HTTP " << GetParam().status;
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, ClassifyWebhookResponseTest,
    ::testing::Values(ClassifyCase{200, Kind::kOk}, ClassifyCase{202, Kind::kOk},
                      ClassifyCase{204, Kind::kOk}, ClassifyCase{301, Kind::kRetry},
                      ClassifyCase{302, Kind::kRetry}, ClassifyCase{400, Kind::kReject},
                      ClassifyCase{401, Kind::kReject}, ClassifyCase{404, Kind::kReject},
                      ClassifyCase{408, Kind::kRetry}, ClassifyCase{410, Kind::kReject},
                      ClassifyCase{413, Kind::kReject}, ClassifyCase{429, Kind::kRetry},
                      ClassifyCase{500, Kind::kRetry}, ClassifyCase{502, Kind::kRetry},
                      ClassifyCase{503, Kind::kRetry}, ClassifyCase{504, Kind::kRetry}),
    [](const ::testing::TestParamInfo<ClassifyCase>& param_info) {
      return "Http" + std::to_string(param_info.param.status);
    });

TEST(ClassifyWebhookResponseErrorTest, QuotesTheResponseBodyOnOneLine) {
  const auto result = ClassifyWebhookResponse(422, "missing field\r\n\"id\"", std::nullopt);
  EXPECT_EQ(result.kind, Kind::kReject);
  EXPECT_EQ(result.error, "HTTP 422: missing field \"id\"");
  const auto page = ClassifyWebhookResponse(
      502, "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>\n",
      std::nullopt);
  EXPECT_EQ(page.error, "HTTP 502: 502 Bad Gateway");
  EXPECT_NE(ClassifyWebhookResponse(410, "", std::nullopt).error.find("gone"), std::string::npos);
  EXPECT_NE(ClassifyWebhookResponse(302, "", std::nullopt).error.find("redirects"),
            std::string::npos);
}

TEST(ClassifyWebhookResponseErrorTest, CarriesRetryAfterOnRetries) {
  const auto result = ClassifyWebhookResponse(429, "", milliseconds(3000));
  EXPECT_EQ(result.retry_after, milliseconds(3000));
}

TEST(ParseRetryAfterTest, AcceptsSecondsAndHttpDates) {
  const WallTime now = std::chrono::system_clock::from_time_t(1445412450);  // 07:27:30 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), seconds(120));
  EXPECT_EQ(ParseRetryAfter("0", now), seconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now), seconds(30));
  // A date in the past means "now".
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), seconds(0));
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
}

TEST(ParseRetryAfterTest, ClampsHostileValuesInsteadOfOverflowing) {
  const WallTime now = std::chrono::system_clock::from_time_t(1445412450);
  EXPECT_EQ(ParseRetryAfter("86400", now), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("9000000000000", now), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999999", now), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("+5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter(std::string(100, '9'), now), std::nullopt);
}

}  // namespace
}  // namespace hb

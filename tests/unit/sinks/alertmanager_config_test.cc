// The alertmanager sink's settings: defaults, and every mistake reported
// with the key it is about.

#include "sinks/alertmanager/alertmanager_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config_loader.h"

namespace hb {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

LoadResult Load(const std::string& sink_keys) {
  const SinkParsers parsers{{"alertmanager", ParseAlertmanagerSinkSettings}};
  return LoadConfigString("sinks:\n  - name: alerts\n    type: alertmanager\n" + sink_keys, parsers,
                          [](std::string_view name) -> std::optional<std::string> {
                            if (name == "AM_PASSWORD") return "s3cret";
                            return std::nullopt;
                          });
}

const AlertmanagerSinkSettings& SettingsOf(const LoadResult& result) {
  return dynamic_cast<const AlertmanagerSinkSettings&>(*result.config->sinks.at(0).settings);
}

TEST(AlertmanagerConfigTest, DefaultsFollowPrometheus) {
  const auto result = Load("    urls: [http://am-0:9093, http://am-1:9093]\n");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(result.errors);
  const auto& settings = SettingsOf(result);
  EXPECT_EQ(settings.urls.size(), 2U);
  EXPECT_EQ(settings.alertname, "ConsulInstanceDown");
  EXPECT_EQ(settings.service_alertname, "ConsulServiceDown");
  EXPECT_EQ(settings.severity, "critical");
  EXPECT_EQ(settings.resend_interval, minutes(1));
  EXPECT_EQ(settings.expire_after, minutes(4));
  EXPECT_FALSE(settings.alert_on_deregistration);
  EXPECT_EQ(settings.max_annotation_bytes, 4096U);
}

TEST(AlertmanagerConfigTest, ExpiryFollowsTheResendIntervalUnlessSet) {
  auto result = Load("    urls: [http://am:9093]\n    resend_interval: 30s\n");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(result.errors);
  EXPECT_EQ(SettingsOf(result).expire_after, minutes(2));
  result = Load("    urls: [http://am:9093]\n    resend_interval: 30s\n    expire_after: 10m\n");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(result.errors);
  EXPECT_EQ(SettingsOf(result).expire_after, minutes(10));
}

TEST(AlertmanagerConfigTest, ReadsLabelsAnnotationsAndAuthAndMasksThePassword) {
  const auto result = Load(R"(    urls: ["https://am.example/alertmanager"]
    alertname: PaymentsInstanceDown
    severity: page
    labels: {team: payments, env: prod}
    annotations: {runbook_url: "https://runbooks/x"}
    auth: {basic: {username: bridge, password: "${AM_PASSWORD}"}}
    headers: {X-Scope-OrgID: tenant-1}
    ca_file: /etc/ssl/am.pem
)");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(result.errors);
  const auto& settings = SettingsOf(result);
  EXPECT_EQ(settings.alertname, "PaymentsInstanceDown");
  EXPECT_EQ(settings.labels.at("env"), "prod");
  EXPECT_EQ(settings.basic_password, "s3cret");
  const std::string shown = FormatSinkConfig(result.config->sinks[0], /*mask_secrets=*/true);
  EXPECT_THAT(shown, HasSubstr("password: \"******\""));
  EXPECT_THAT(shown, ::testing::Not(HasSubstr("s3cret")));
  // Any header may be a credential: every value is masked.
  EXPECT_THAT(shown, HasSubstr("X-Scope-OrgID: \"******\""));
}

TEST(AlertmanagerConfigTest, EveryMistakeIsReportedWithItsKey) {
  const auto result =
      Load(R"(    urls: ["ftp://am:9093", "http://am:9093", "http://am:9093", "http://x/?a=1"]
    alertname: ""
    labels: {"bad-name": x, alertname: y, __meta: z, empty: ""}
    annotations: {summary: mine}
    resend_interval: 500ms
    auth: {bearer_token: t, basic: {username: u}}
    timeout: 0s
    max_annotation_bytes: 2MiB
    sevrity: page
    headers: {"Bad Name": x, Content-Length: "5", X-Ok: "a\r\nInjected: yes"}
)");
  ASSERT_FALSE(result.ok());
  const auto& errors = result.errors;
  auto has = [&](const std::string& text) {
    EXPECT_THAT(errors, Contains(HasSubstr(text))) << ::testing::PrintToString(errors);
  };
  has("sinks[0].urls[0]: expected an http(s) URL, got \"ftp://am:9093\"");
  has("sinks[0].urls: lists the same Alertmanager twice");
  has("sinks[0].urls[3]: expected a base URL without query or fragment");
  has("sinks[0].alertname: must not be empty");
  has("sinks[0].labels.bad-name: not a valid label name");
  has("sinks[0].labels.alertname: the sink sets label \"alertname\" itself");
  has("sinks[0].labels.__meta: not a valid label name");
  has("sinks[0].labels.empty: empty value");
  has("sinks[0].annotations.summary: the sink sets annotation \"summary\" itself");
  has("sinks[0].resend_interval: must be at least 1s");
  has("sinks[0].auth.basic: use either bearer_token or basic, not both");
  has("sinks[0].timeout: must be greater than 0");
  has("sinks[0].max_annotation_bytes: at most 1MiB");
  has("sinks[0].sevrity");
  has("sinks[0].headers: header name \"Bad Name\" is not an HTTP token");
  has("sinks[0].headers: header \"Content-Length\" is set by the sink itself");
  has("sinks[0].headers: the value of header \"X-Ok\" holds a control character");
}

TEST(AlertmanagerConfigTest, UrlsAreRequiredAndExpiryMustOutlastTheResend) {
  auto result = Load("    severity: page\n");
  EXPECT_THAT(result.errors, Contains(HasSubstr("sinks[0].urls: required")));
  result = Load("    urls: [http://am:9093]\n    resend_interval: 1m\n    expire_after: 1m\n");
  EXPECT_THAT(result.errors,
              Contains(HasSubstr("sinks[0].expire_after: must be longer than resend_interval")));
}

TEST(AlertmanagerConfigTest, AFiringEventMayOnlyBeRoutedWithTheEventsThatResolveIt) {
  auto result = Load("    urls: [http://am:9093]\n    events: [instance.down, service.*]\n");
  EXPECT_THAT(result.errors, Contains(HasSubstr("sinks[0].events: routes instance.down but not "
                                                "instance.up, which resolves its alert")));
  EXPECT_THAT(result.errors, Contains(HasSubstr("not instance.deregistered")));
  result = Load("    urls: [http://am:9093]\n    events: [service.down]\n");
  EXPECT_THAT(result.errors, Contains(HasSubstr("routes service.down but not service.up")));
  result = Load("    urls: [http://am:9093]\n    events: [\"service.*\"]\n");
  EXPECT_TRUE(result.ok()) << ::testing::PrintToString(result.errors);
}

TEST(AlertmanagerConfigTest, LabelNamesFollowAlertmanagersRule) {
  EXPECT_TRUE(IsValidAlertLabelName("team"));
  EXPECT_TRUE(IsValidAlertLabelName("_x9"));
  EXPECT_FALSE(IsValidAlertLabelName(""));
  EXPECT_FALSE(IsValidAlertLabelName("9lives"));
  EXPECT_FALSE(IsValidAlertLabelName("a.b"));
  EXPECT_FALSE(IsValidAlertLabelName("__name__"));
  EXPECT_THAT(Load("    urls: [http://am:9093]\n").errors, IsEmpty());
}

}  // namespace
}  // namespace hb

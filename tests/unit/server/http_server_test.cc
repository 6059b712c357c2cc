#include "bridge/server/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

namespace hb {
namespace {

HttpHandlers Fixed(bool ready) {
  return {[] { return std::string("health_bridge_up 1\n"); },
          [ready](std::string& why) {
            why = "initial sync in progress";
            return ready;
          },
          [] { return std::string(R"({"instances":[]})"); }};
}

TEST(ParseListenAddressTest, AcceptsHostPortAndBracketedIpv6) {
  EXPECT_EQ(ParseListenAddress("0.0.0.0:9464"), (std::pair<std::string, int>{"0.0.0.0", 9464}));
  EXPECT_EQ(ParseListenAddress("[::1]:80"), (std::pair<std::string, int>{"::1", 80}));
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0"), (std::pair<std::string, int>{"127.0.0.1", 0}));
  for (const char* bad : {"9464", ":9464", "host:", "host:65536", "::1:80", "[::1]80", "h:-1"}) {
    EXPECT_EQ(ParseListenAddress(bad), std::nullopt) << bad;
  }
}

TEST(HttpServerTest, ServesTheHandlersWithTheirContentTypes) {
  auto server = HttpServer::Start("127.0.0.1:0", Fixed(true));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "health_bridge_up 1\n");
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  auto instances = client.Get("/v1/instances");
  EXPECT_EQ(instances->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(client.Get("/nope")->status, 404);
}

TEST(HttpServerTest, NotReadySaysWhyWith503) {
  auto server = HttpServer::Start("127.0.0.1:0", Fixed(false));
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", (*server)->port());
  auto readyz = client.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 503);
  EXPECT_EQ(readyz->body, "not ready: initial sync in progress\n");
  EXPECT_EQ(client.Get("/healthz")->status, 200) << "liveness never depends on readiness";
}

TEST(HttpServerTest, APortInUseIsAClearError) {
  auto first = HttpServer::Start("127.0.0.1:0", Fixed(true));
  ASSERT_TRUE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::Start(taken, Fixed(true));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("server.listen " + taken), std::string::npos)
      << second.status().message();
}

}  // namespace
}  // namespace hb

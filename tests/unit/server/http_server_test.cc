#include "bridge/server/http_server.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include "tests/support/process/child_process.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

HttpHandlers Fixed(bool ready) {
  HttpHandlers handlers;
  handlers.metrics = [] { return std::string("health_bridge_up 1\n"); };
  handlers.ready = [ready](std::string& why) {
    why = "initial sync in progress";
    return ready;
  };
  handlers.instances = [](const QueryParams& query) {
    std::string text = R"({"instances":[]})";
    for (const auto& [name, value] : query) text += " " + name + "=" + value;
    return text;
  };
  handlers.sinks = [] { return std::string(R"({"sinks":[]})"); };
  handlers.index = "health-bridge\n";
  return handlers;
}

HttpServerOptions Loopback() {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  return options;
}

// A raw client socket, for what no well-behaved client library sends.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  bool Send(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Everything until the server closes, or what came before `timeout`.
  std::string ReadUntilClosed(milliseconds timeout = seconds(10)) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return text;
      pollfd waiting{fd_, POLLIN, 0};
      if (::poll(&waiting, 1, static_cast<int>(left.count())) <= 0) return text;
      char buffer[4096];
      const ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) {
        closed_ = true;
        return text;
      }
      text.append(buffer, static_cast<std::size_t>(got));
    }
  }
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool connected_ = false;
  bool closed_ = false;
};

TEST(ParseListenAddressTest, AcceptsHostPortAndBracketedIpv6) {
  EXPECT_EQ(ParseListenAddress("0.0.0.0:9464"), (std::pair<std::string, int>{"0.0.0.0", 9464}));
  EXPECT_EQ(ParseListenAddress("[::1]:80"), (std::pair<std::string, int>{"::1", 80}));
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0"), (std::pair<std::string, int>{"127.0.0.1", 0}));
  for (const char* bad : {"9464", ":9464", "host:", "host:65536", "::1:80", "[::1]80", "h:-1"}) {
    EXPECT_EQ(ParseListenAddress(bad), std::nullopt) << bad;
  }
}

TEST(HttpServerTest, ServesTheHandlersWithTheirContentTypes) {
  auto server = HttpServer::Start(Loopback(), Fixed(true));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "health_bridge_up 1\n");
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  auto instances = client.Get("/v1/instances?service=orders&status=critical");
  EXPECT_EQ(instances->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(instances->body, R"({"instances":[]} service=orders status=critical)");
  auto sinks = client.Get("/v1/sinks");
  ASSERT_TRUE(sinks);
  EXPECT_EQ(sinks->status, 200);
  EXPECT_EQ(sinks->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(sinks->body, R"({"sinks":[]})");
  EXPECT_EQ(client.Get("/")->body, "health-bridge\n");
  EXPECT_EQ(client.Get("/nope")->status, 404);
  auto head = client.Head("/metrics");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
}

TEST(HttpServerTest, InstancesIsNotFoundWhenNotEnabled) {
  HttpHandlers handlers = Fixed(true);
  handlers.instances = nullptr;
  auto server = HttpServer::Start(Loopback(), handlers);
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", (*server)->port());
  EXPECT_EQ(client.Get("/v1/instances")->status, 404);
}

TEST(HttpServerTest, NotReadySaysWhyWith503) {
  auto server = HttpServer::Start(Loopback(), Fixed(false));
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", (*server)->port());
  auto readyz = client.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 503);
  EXPECT_EQ(readyz->body, "not ready: initial sync in progress\n");
  EXPECT_EQ(client.Get("/healthz")->status, 200) << "liveness never depends on readiness";
}

TEST(HttpServerTest, APortInUseIsAClearError) {
  auto first = HttpServer::Start(Loopback(), Fixed(true));
  ASSERT_TRUE(first.ok());
  HttpServerOptions taken = Loopback();
  taken.listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::Start(taken, Fixed(true));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("server.listen " + taken.listen), std::string::npos)
      << second.status().message();
}

TEST(HostileClientTest, ABodyIsRefusedFromTheHeadWithoutBeingRead) {
  auto server = HttpServer::Start(Loopback(), Fixed(true));
  ASSERT_TRUE(server.ok());
  {
    // The review's bomb: a gzip body that inflates to 300 MiB.
    RawClient client((*server)->port());
    ASSERT_TRUE(
        client.Send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                    "Content-Length: 314572800\r\n\r\n" +
                    std::string(1024, '\x1f')));
    const std::string answer = client.ReadUntilClosed();
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 405 "));
    EXPECT_THAT(answer, HasSubstr("Allow: GET, HEAD"));
    EXPECT_TRUE(client.closed());
  }
  {
    RawClient client((*server)->port());
    ASSERT_TRUE(client.Send("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"));
    EXPECT_THAT(client.ReadUntilClosed(), StartsWith("HTTP/1.1 400 "));
  }
  {
    RawClient client((*server)->port());
    ASSERT_TRUE(client.Send("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    EXPECT_THAT(client.ReadUntilClosed(), StartsWith("HTTP/1.1 400 "));
  }
}

TEST(HostileClientTest, OversizedAndMalformedHeadsAreRefused) {
  HttpServerOptions options = Loopback();
  options.max_head_bytes = 1024;
  auto server = HttpServer::Start(options, Fixed(true));
  ASSERT_TRUE(server.ok());
  {
    RawClient client((*server)->port());
    ASSERT_TRUE(
        client.Send("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n"));
    EXPECT_THAT(client.ReadUntilClosed(), StartsWith("HTTP/1.1 431 "));
  }
  for (const char* bad :
       {"GET /metrics\r\n\r\n", "GET http://evil/ HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n"}) {
    RawClient client((*server)->port());
    ASSERT_TRUE(client.Send(bad));
    EXPECT_THAT(client.ReadUntilClosed(), StartsWith("HTTP/1.1 400 ")) << bad;
  }
}

TEST(HostileClientTest, SlowClientsNeverStarveTheProbesAndAreCutOffAtTheHeadDeadline) {
  HttpServerOptions options = Loopback();
  options.max_connections = 16;
  options.head_timeout = seconds(2);
  auto server = HttpServer::Start(options, Fixed(true));
  ASSERT_TRUE(server.ok());
  // Slowloris: more connections than the server keeps, each a header short.
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawClient>((*server)->port()));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->Send("GET /metrics HTTP/1.1\r\nX-Drip: a"));
  }
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(seconds(3));
  for (int i = 0; i < 5; ++i) {
    auto healthz = client.Get("/healthz");
    ASSERT_TRUE(healthz) << "probe " << i << " starved";
    EXPECT_EQ(healthz->status, 200);
    auto metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
  }
  // Every slow connection is closed: evicted, or timed out with a 408.
  for (auto& connection : slow) {
    const std::string answer = connection->ReadUntilClosed(seconds(10));
    EXPECT_TRUE(connection->closed());
    if (!answer.empty()) {
      EXPECT_THAT(answer, StartsWith("HTTP/1.1 408 "));
    }
  }
}

TEST(HostileClientTest, AFullWorkQueueAnswers503AndTheProbesStillAnswer) {
  HttpServerOptions options = Loopback();
  options.workers = 1;
  options.max_queued = 1;
  std::mutex mutex;
  std::condition_variable released;
  bool release = false;
  std::atomic<int> started{0};
  HttpHandlers handlers = Fixed(true);
  handlers.metrics = [&] {
    ++started;
    std::unique_lock lock(mutex);
    released.wait(lock, [&] { return release; });
    return std::string("late 1\n");
  };
  auto server = HttpServer::Start(options, handlers);
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  auto scrape = [port] {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(seconds(30));
    auto result = client.Get("/metrics");
    return result ? result->status : -1;
  };
  auto first = std::async(std::launch::async, scrape);  // takes the worker
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (started == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_EQ(started, 1);
  // Two more: whichever the server reads first waits in the one-slot
  // queue, the other finds it full.
  RawClient second(port);
  RawClient third(port);
  ASSERT_TRUE(second.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(third.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  std::string refused = third.ReadUntilClosed(seconds(5));
  RawClient* queued = &second;
  if (!third.closed()) {
    refused = second.ReadUntilClosed(seconds(5));
    queued = &third;
  }
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(refused, HasSubstr("Retry-After: 1"));
  httplib::Client client("127.0.0.1", port);
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  released.notify_all();
  EXPECT_EQ(first.get(), 200);
  EXPECT_THAT(queued->ReadUntilClosed(seconds(10)), StartsWith("HTTP/1.1 200 "));
}

std::string Bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt)), nullptr);
  crypt_data data{};
  const char* hash = crypt_rn(password.c_str(), salt, &data, sizeof(data));
  EXPECT_NE(hash, nullptr);
  return hash == nullptr ? "" : hash;
}

TEST(HttpServerAuthTest, BasicAuthGuardsEverythingButTheProbes) {
  HttpServerOptions options = Loopback();
  options.web.basic_auth_users["prometheus"] = Bcrypt("scrape-pass");
  auto server = HttpServer::Start(options, Fixed(true));
  ASSERT_TRUE(server.ok());
  httplib::Client anonymous("127.0.0.1", (*server)->port());
  auto denied = anonymous.Get("/metrics");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  EXPECT_EQ(denied->get_header_value("WWW-Authenticate"), R"(Basic realm="health-bridge")");
  EXPECT_EQ(anonymous.Get("/v1/instances")->status, 401);
  EXPECT_EQ(anonymous.Get("/v1/sinks")->status, 401);
  EXPECT_EQ(anonymous.Get("/")->status, 401);
  EXPECT_EQ(anonymous.Get("/healthz")->status, 200);
  EXPECT_EQ(anonymous.Get("/readyz")->status, 200);

  httplib::Client wrong("127.0.0.1", (*server)->port());
  wrong.set_basic_auth("prometheus", "guess");
  EXPECT_EQ(wrong.Get("/metrics")->status, 401);
  httplib::Client stranger("127.0.0.1", (*server)->port());
  stranger.set_basic_auth("root", "scrape-pass");
  EXPECT_EQ(stranger.Get("/metrics")->status, 401);

  httplib::Client scraper("127.0.0.1", (*server)->port());
  scraper.set_basic_auth("prometheus", "scrape-pass");
  for (int i = 0; i < 3; ++i) {  // the second and third come from the verified cache
    auto metrics = scraper.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
    EXPECT_EQ(metrics->body, "health_bridge_up 1\n");
  }
}

TEST(HttpServerTlsTest, ServesHttpsToARealClientWithTheWebConfigsCertificate) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hb-tls-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cert = dir / "server.crt";
  const auto key = dir / "server.key";
  const auto made = test_support::RunToCompletion(
      "/usr/bin/openssl",
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
       key.string(), "-out", cert.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const auto web_config = dir / "web.yml";
  std::ofstream(web_config) << "tls_server_config:\n  cert_file: " << cert.string()
                            << "\n  key_file: " << key.string()
                            << "\nhttp_server_config:\n  headers: {X-Frame-Options: deny}\n";
  auto web = LoadWebConfig(web_config.string());
  ASSERT_TRUE(web.ok()) << web.status().ToString();
  HttpServerOptions options = Loopback();
  options.web = *web;
  auto server = HttpServer::Start(options, Fixed(true));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_TRUE((*server)->tls());
  const std::string base = "https://127.0.0.1:" + std::to_string((*server)->port());

  // curl, as an operator would check it, verifying the certificate.
  const auto https = test_support::RunToCompletion(
      "/usr/bin/curl", {"-sS", "-i", "--cacert", cert.string(), base + "/metrics"});
  EXPECT_EQ(https.exit_code, 0) << https.err;
  EXPECT_THAT(https.out, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(https.out, HasSubstr("X-Frame-Options: deny"));
  EXPECT_THAT(https.out, HasSubstr("health_bridge_up 1"));
  // Plain HTTP on the TLS port gets nothing served.
  const auto plain = test_support::RunToCompletion(
      "/usr/bin/curl",
      {"-sS", "-m", "5", "http://127.0.0.1:" + std::to_string((*server)->port()) + "/metrics"});
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_THAT(plain.out, Not(HasSubstr("health_bridge_up")));
  std::filesystem::remove_all(dir);
}

TEST(WebConfigTest, RefusesWhatItCannotHonour) {
  auto error = [](std::string_view yaml) {
    auto parsed = ParseWebConfig(yaml, "web.yml");
    return parsed.ok() ? std::string("(accepted)") : parsed.status().message();
  };
  EXPECT_THAT(error("tls_server_config: {cert_file: a}\n"), HasSubstr("key_file"));
  EXPECT_THAT(error("tls_server_config: {cert_file: a, key_file: b, cipher_suites: [x]}\n"),
              HasSubstr("tls_server_config.cipher_suites: part of the exporter-toolkit format but "
                        "not supported"));
  EXPECT_THAT(error("tls_config: {}\n"), HasSubstr("tls_config: unknown key"));
  EXPECT_THAT(error("basic_auth_users: {admin: plaintext}\n"), HasSubstr("bcrypt"));
  EXPECT_THAT(error("tls_server_config: {cert_file: a, key_file: b, client_auth_type: "
                    "RequireAndVerifyClientCert}\n"),
              HasSubstr("client_ca_file"));
  EXPECT_THAT(error("tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}\n"),
              HasSubstr("TLS12 or TLS13"));
  EXPECT_THAT(error("http_server_config: {headers: {\"X-A\": \"a\\r\\nb\"}}\n"),
              HasSubstr("not a valid HTTP header"));
  EXPECT_EQ(error(""), "(accepted)");
}

TEST(WebConfigTest, MissingCertificateFilesAreNamed) {
  HttpServerOptions options = Loopback();
  WebTlsConfig tls;
  tls.cert_file = "/nonexistent/server.crt";
  tls.key_file = "/nonexistent/server.key";
  options.web.tls = tls;
  auto server = HttpServer::Start(options, Fixed(true));
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("/nonexistent/server.crt"));
}

}  // namespace
}  // namespace hb

// The cluster's KV client checks Consul's certificate against
// consul.tls.server_name when set, like the watch's requests: a Consul
// reached by address whose certificate names only its DNS name.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bridge/cluster/consul_kv_client.h"
#include "bridge/server/http_server.h"
#include "bridge/server/web_config.h"
#include "tests/support/process/child_process.h"

namespace hb {
namespace {

TEST(ConsulKvClientTlsTest, VerifiesTheCertificateAgainstServerName) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hb-kv-tls-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cert = dir / "consul.crt";
  const auto key = dir / "consul.key";
  // Names consul.test only: reached as 127.0.0.1 it does not match.
  const auto made = test_support::RunToCompletion(
      "/usr/bin/openssl",
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "1", "-subj", "/CN=consul.test", "-addext", "subjectAltName=DNS:consul.test",
       "-keyout", key.string(), "-out", cert.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto web_config = dir / "web.yml";
  std::ofstream(web_config) << "tls_server_config:\n  cert_file: " << cert.string()
                            << "\n  key_file: " << key.string() << "\n";
  auto web = LoadWebConfig(web_config.string());
  ASSERT_TRUE(web.ok()) << web.status().ToString();
  HttpServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  server_options.web = *web;
  // Any TLS server does: it answers /v1/kv/... with 404, which the KV
  // client reads as "no such key" once the handshake succeeded.
  auto server = HttpServer::Start(server_options, HttpHandlers{});
  ASSERT_TRUE(server.ok()) << server.status().ToString();

  ConsulClientOptions options;
  options.address = "https://127.0.0.1:" + std::to_string((*server)->port());
  options.tls.ca_file = cert.string();
  auto unnamed = ConsulKvClient::Create(options);
  ASSERT_TRUE(unnamed.ok());
  EXPECT_FALSE((*unnamed)->Get("it/key").ok()) << "the certificate does not name 127.0.0.1";

  options.tls.server_name = "consul.test";
  auto named = ConsulKvClient::Create(options);
  ASSERT_TRUE(named.ok());
  auto read = (*named)->Get("it/key");
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_FALSE(*read);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hb

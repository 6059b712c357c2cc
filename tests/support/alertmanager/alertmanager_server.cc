#include "tests/support/alertmanager/alertmanager_server.h"

#include <httplib.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "bridge/model/cloud_event.h"

namespace hb::test_support {
namespace {

// bcrypt (cost 4, to keep the start fast) of kBasicPassword, as the web
// config wants it: made once with Python's crypt.crypt, so the tests need no
// bcrypt tool.
constexpr char kBasicPasswordHash[] =
    "$2b$04$FR065RGPqiN07rS3PYCE1eX8OQGkt2CkU40Tk/M5aSmasrhVwogMq";

// A self-signed certificate for 127.0.0.1 (its own CA), with openssl.
void MakeCertificate(const std::filesystem::path& directory) {
  const auto result = RunToCompletion(
      "/usr/bin/openssl",
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
       (directory / "key.pem").string(), "-out", (directory / "cert.pem").string()});
  if (result.exit_code != 0) throw std::runtime_error("openssl req failed: " + result.err);
}

}  // namespace

AlertmanagerServer::AlertmanagerServer(Options options) : options_(std::move(options)) {
  const std::filesystem::path& directory = server_.directory();
  std::filesystem::create_directories(directory / "data");
  {
    std::ofstream config(directory / "alertmanager.yml");
    config << "route:\n"
           << "  receiver: test\n"
           << "  group_by: " << options_.group_by << "\n"
           << "  group_wait: 500ms\n"
           << "  group_interval: 1s\n"
           << "  repeat_interval: 1h\n"
           << "receivers:\n"
           << "  - name: test\n";
    if (!options_.receiver_url.empty()) {
      config << "    webhook_configs:\n"
             << "      - url: " << options_.receiver_url << "\n"
             << "        send_resolved: true\n";
    }
  }
  std::vector<std::string> args{
      "--config.file=" + (directory / "alertmanager.yml").string(),
      "--storage.path=" + (directory / "data").string(),
      "--web.listen-address=" + server_.listen_address(),
      // No gossip: a lone test peer must not look for (or bind) a cluster port.
      "--cluster.listen-address=", "--log.level=warn"};
  if (options_.basic_auth || options_.tls) {
    std::ofstream web(directory / "web.yml");
    if (options_.basic_auth) {
      web << "basic_auth_users:\n"
          << "  " << kBasicUsername << ": " << kBasicPasswordHash << "\n";
    }
    if (options_.tls) {
      MakeCertificate(directory);
      web << "tls_server_config:\n"
          << "  cert_file: " << (directory / "cert.pem").string() << "\n"
          << "  key_file: " << (directory / "key.pem").string() << "\n";
    }
    args.push_back("--web.config.file=" + (directory / "web.yml").string());
  }
  args_ = std::move(args);
  server_.Start("/usr/bin/prometheus-alertmanager", args_);
}

std::string AlertmanagerServer::url() const {
  return std::string(options_.tls ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(server_.port());
}

namespace {
httplib::Client ClientFor(const AlertmanagerServer& server,
                          const AlertmanagerServer::Options& options) {
  httplib::Client client(server.url());
  if (options.tls) client.set_ca_cert_path(server.ca_file());
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  if (options.basic_auth) {
    client.set_basic_auth(AlertmanagerServer::kBasicUsername, AlertmanagerServer::kBasicPassword);
  }
  return client;
}
}  // namespace

bool AlertmanagerServer::WaitReady(std::chrono::milliseconds timeout) {
  httplib::Client client = ClientFor(*this, options_);
  return server_.WaitReady(
      [&] {
        auto response = client.Get("/-/ready");
        return response && response->status == 200;
      },
      timeout);
}

std::optional<nlohmann::json> AlertmanagerServer::Alerts() {
  httplib::Client client = ClientFor(*this, options_);
  auto response = client.Get("/api/v2/alerts");
  if (!response || response->status != 200) return std::nullopt;
  auto body = nlohmann::json::parse(response->body, nullptr, false);
  if (body.is_discarded() || !body.is_array()) return std::nullopt;
  return body;
}

nlohmann::json AlertmanagerServer::WaitForAlerts(
    const std::function<bool(const nlohmann::json&)>& accept, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json last = nlohmann::json::array();
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto alerts = Alerts()) {
      last = std::move(*alerts);
      if (accept(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

std::string AlertmanagerServer::Silence(const std::map<std::string, std::string>& labels) {
  nlohmann::json matchers = nlohmann::json::array();
  for (const auto& [name, value] : labels) {
    matchers.push_back({{"name", name}, {"value", value}, {"isRegex", false}, {"isEqual", true}});
  }
  const auto now = std::chrono::system_clock::now();
  const nlohmann::json silence{{"matchers", matchers},
                               {"startsAt", FormatRfc3339(now)},
                               {"endsAt", FormatRfc3339(now + std::chrono::hours(1))},
                               {"createdBy", "health-bridge tests"},
                               {"comment", "planned maintenance"}};
  httplib::Client client = ClientFor(*this, options_);
  auto response = client.Post("/api/v2/silences", silence.dump(), "application/json");
  if (!response || response->status != 200) {
    throw std::runtime_error("creating a silence failed: " +
                             (response ? response->body : std::string("no answer")));
  }
  return nlohmann::json::parse(response->body).at("silenceID").get<std::string>();
}

std::optional<nlohmann::json> FindAlert(const nlohmann::json& alerts,
                                        const std::map<std::string, std::string>& labels) {
  for (const auto& alert : alerts) {
    bool all = true;
    for (const auto& [name, value] : labels) {
      const auto& have = alert["labels"];
      all = all && have.contains(name) && have[name] == value;
    }
    if (all) return alert;
  }
  return std::nullopt;
}

}  // namespace hb::test_support

#pragma once

// The real Alertmanager (Debian's `prometheus-alertmanager`) as a test peer:
// on 127.0.0.1 with an unused port, its own storage directory, no cluster
// gossip (--cluster.listen-address= empty), short group timers so
// notifications come within a second or two, and every notification sent
// to one webhook receiver. Started and stopped by PID.

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/prometheus/server_process.h"

namespace hb::test_support {

class AlertmanagerServer {
 public:
  struct Options {
    // Where notifications go (an Alertmanager webhook receiver); "" = none.
    std::string receiver_url;
    // Labels a notification groups by. Default: alertname, service_name.
    std::string group_by = "[alertname, service_name]";
    // Demand basic auth (kBasicUsername, kBasicPassword) in its web config;
    // the wrapper's own requests send them.
    bool basic_auth = false;
    // Serve HTTPS with a self-signed certificate for 127.0.0.1, made at
    // start (ca_file() is it). Default: plain HTTP.
    bool tls = false;
  };

  static constexpr char kBasicUsername[] = "bridge";
  static constexpr char kBasicPassword[] = "s3cret";

  explicit AlertmanagerServer(Options options);

  AlertmanagerServer(const AlertmanagerServer&) = delete;
  AlertmanagerServer& operator=(const AlertmanagerServer&) = delete;

  bool WaitReady(std::chrono::milliseconds timeout);
  // "http(s)://127.0.0.1:<port>": the base URL the sink is given.
  std::string url() const;
  // The certificate that verifies the server (with Options::tls).
  std::string ca_file() const { return (server_.directory() / "cert.pem").string(); }
  // GET /api/v2/alerts: the alerts not yet resolved (firing, silenced or
  // inhibited); nullopt when it does not answer.
  std::optional<nlohmann::json> Alerts();
  // Polls Alerts() until `accept` holds for them; the last answer either way.
  nlohmann::json WaitForAlerts(const std::function<bool(const nlohmann::json&)>& accept,
                               std::chrono::milliseconds timeout);
  // Creates a silence of an hour for the alerts with these label values
  // (POST /api/v2/silences); its id.
  std::string Silence(const std::map<std::string, std::string>& labels);
  // Kills it (SIGKILL), as a crash or a network cut would look.
  void Stop() { server_.Stop(); }
  // Starts it again on the same port and storage, after Stop().
  void Restart() { server_.Start("/usr/bin/prometheus-alertmanager", args_); }
  std::string Log() const { return server_.Log(); }

 private:
  Options options_;
  std::vector<std::string> args_;
  ServerProcess server_{"alertmanager"};
};

// The first alert of `alerts` whose labels include all of `labels`.
std::optional<nlohmann::json> FindAlert(const nlohmann::json& alerts,
                                        const std::map<std::string, std::string>& labels);

}  // namespace hb::test_support

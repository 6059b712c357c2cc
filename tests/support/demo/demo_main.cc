// health-bridge-demo: the point of the project in one run (scripts/demo).
// Starts, on 127.0.0.1 and ephemeral ports, a dev Consul (the project's
// Consul test server) seeded with go-kratos-shaped services, an embedded
// Kafka (librdkafka's mock cluster) with a consumer, a webhook receiver that
// checks signatures, and health-bridge with kafka, webhook, log and metrics
// sinks. Then it takes instances offline and back, shows what every sink
// received, and exits 0 only if every expected event arrived everywhere.
// With --follow it leaves everything running until Ctrl-C.

#include <httplib.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "sinks/webhook/webhook_signature.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/bridge_process.h"

namespace {

using hb::test_support::BridgeProcess;
using hb::test_support::ChildProcess;
using hb::test_support::ConsulTestServer;
using hb::test_support::MockKafkaCluster;
using hb::test_support::ReceivedRequest;
using hb::test_support::ScriptedHttpPeer;
using hb::test_support::TopicReader;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kTopic[] = "consul.health.events";
constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr int kPartitions = 3;
// Short enough for a demo, long enough that a heartbeat every second never
// lapses by accident.
constexpr char kTtl[] = "3s";

std::atomic<bool> interrupted{false};

struct Instance {
  std::string service, id;
  int port;
};
// Three services as go-kratos registers them: a TTL check per instance,
// heartbeats, DeregisterCriticalServiceAfter for crashed instances.
const std::vector<Instance> kInstances = {
    {"helloworld", "helloworld-1", 8001}, {"helloworld", "helloworld-2", 8002},
    {"helloworld", "helloworld-3", 8003}, {"payments", "payments-1", 9001},
    {"payments", "payments-2", 9002},     {"billing", "billing-1", 7001}};

// Heartbeats every live instance's TTL check once a second, as the
// instances' own registry clients would.
class Heartbeats {
 public:
  explicit Heartbeats(ConsulTestServer& consul) : consul_(consul) {
    for (const auto& instance : kInstances) beating_.insert(instance.id);
    thread_ = std::thread([this] {
      while (!stop_) {
        std::set<std::string> beating;
        {
          std::lock_guard lock(mutex_);
          beating = beating_;
        }
        for (const auto& id : beating) consul_.UpdateCheck("service:" + id, "passing", "ok");
        std::this_thread::sleep_for(seconds(1));
      }
    });
  }
  ~Heartbeats() {
    stop_ = true;
    thread_.join();
  }
  void Stop(const std::string& id) {
    std::lock_guard lock(mutex_);
    beating_.erase(id);
  }
  void Start(const std::string& id) {
    std::lock_guard lock(mutex_);
    beating_.insert(id);
  }

 private:
  ConsulTestServer& consul_;
  std::mutex mutex_;
  std::set<std::string> beating_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// What reached one sink: event "<type> <subject>" → arrival time.
struct Seen {
  std::mutex mutex;
  std::map<std::string, Clock::time_point> events;
  std::vector<std::string> lines;
};

std::string Key(const json& event) {
  return event["data"]["event"].get<std::string>() + " " + event["subject"].get<std::string>();
}

void Say(const std::string& text) { std::cout << text << std::endl; }

class Demo {
 public:
  bool Start(const std::filesystem::path& bridge_binary) {
    Say("==> starting a dev Consul, an embedded Kafka, a webhook receiver and health-bridge");
    // Not a test binary: the event contract is the tests' to check.
    receiver_.ExpectCloudEvents(false);
    if (consul_.Start() == 0) return Fail("the dev Consul could not listen");
    for (const auto& instance : kInstances) Register(instance);
    heartbeats_ = std::make_unique<Heartbeats>(consul_);
    kafka_.CreateTopic(kTopic, kPartitions);
    reader_ = std::make_unique<TopicReader>(kafka_.bootstraps(), kTopic, kPartitions);
    kafka_thread_ = std::thread([this] { ConsumeKafka(); });

    directory_ = std::filesystem::temp_directory_path() / ("hb-demo-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory_);
    std::ostringstream config;
    config << "consul: {address: " << consul_.address() << "}\n"
           << "state: {dir: " << directory_.string() << "}\n"
           << "sinks:\n"
           << "  - {name: kafka, type: kafka, brokers: " << kafka_.bootstraps()
           << ", topic: " << kTopic << "}\n"
           << "  - {name: webhook, type: webhook, url: " << receiver_.url()
           << ", secret: " << kSecret << "}\n"
           << "  - {name: log, type: log}\n"
           << "  - {name: metrics, type: metrics}\n";
    bridge_ = std::make_unique<BridgeProcess>(bridge_binary, config.str(), ChildProcess::Options{},
                                              seconds(30));
    if (!bridge_->ok()) return Fail("health-bridge did not start:\n" + bridge_->process().Stderr());
    port_ = bridge_->port();
    Say("    dev Consul       " + consul_.address());
    Say("    Kafka bootstrap  " + kafka_.bootstraps() + "  topic " + kTopic);
    Say("    webhook receiver " + receiver_.url());
    Say("    health-bridge    http://127.0.0.1:" + std::to_string(port_) +
        "  (/metrics /healthz /readyz /v1/instances)");
    Say("    " + std::to_string(kInstances.size()) +
        " instances of helloworld, payments and billing are up; the first sync is silent.\n");
    return true;
  }

  // One narrated step: act, then wait for every expected event in Kafka
  // and at the webhook. Returns false when one did not arrive.
  bool Step(const std::string& label, const std::string& title, const std::function<void()>& act,
            const std::vector<std::string>& expected, const std::string& instance_for_metrics) {
    Say("==> " + label + ": " + title);
    auto acted_at = Clock::now();
    act();
    const auto deadline = Clock::now() + seconds(20);
    bool all = false;
    while (!all && Clock::now() < deadline && !interrupted) {
      all = std::all_of(expected.begin(), expected.end(), [&](const std::string& key) {
        return Has(kafka_seen_, key) && Has(webhook_seen_, key) && InLog(key);
      });
      if (!all) std::this_thread::sleep_for(milliseconds(20));
    }
    // A lapsed TTL is Consul's doing: time the bridge from the moment the
    // check turned critical, not from the last heartbeat.
    if (const auto critical = consul_.CriticalSince("service:" + instance_for_metrics);
        critical && *critical > acted_at) {
      acted_at = *critical;
    }
    bool ok = true;
    for (const auto& key : expected) {
      const auto kafka_at = At(kafka_seen_, key);
      const auto webhook_at = At(webhook_seen_, key);
      const bool logged = InLog(key);
      const bool seen = kafka_at && webhook_at && logged;
      ok = ok && seen;
      std::string latency = "-";
      if (webhook_at) {
        latency = std::to_string(
                      std::chrono::duration_cast<milliseconds>(*webhook_at - acted_at).count()) +
                  " ms";
      }
      Say(std::string("    ") + (seen ? "ok      " : "MISSING ") + key + ": kafka " +
          (kafka_at ? "yes" : "no") + ", webhook " + (webhook_at ? "yes (signature ok)" : "no") +
          ", log " + (logged ? "yes" : "no"));
      summary_.push_back(
          {label, key, kafka_at.has_value(), webhook_at.has_value(), logged, latency});
    }
    for (const auto& line : MetricsOf(instance_for_metrics)) Say("    /metrics: " + line);
    Say("");
    return ok;
  }

  void PrintSummary() {
    Say("==> summary");
    std::printf("    %-22s %-44s %-6s %-8s %-4s %s\n", "step", "expected event", "kafka", "webhook",
                "log", "latency");
    for (const auto& row : summary_) {
      std::printf("    %-22s %-44s %-6s %-8s %-4s %s\n", row.step.c_str(), row.event.c_str(),
                  row.kafka ? "yes" : "NO", row.webhook ? "yes" : "NO", row.log ? "yes" : "NO",
                  row.latency.c_str());
    }
    std::fflush(stdout);
    Say("    latency: from the change in Consul (for a lapsed TTL, the moment Consul marked\n"
        "    the check critical) to the webhook receiver's answer\n");
  }

  void Follow() {
    const std::string consul = consul_.address();
    const std::string metrics = "http://127.0.0.1:" + std::to_string(port_);
    Say("==> everything keeps running; Ctrl-C stops it all. Try:");
    Say("    curl -s " + metrics + "/v1/instances | jq .");
    Say("    curl -s " + metrics + "/metrics | grep health_bridge_instance_up");
    Say("    curl -X PUT " + consul +
        "/v1/agent/service/register -d '{\"ID\":\"helloworld-9\",\"Name\":\"helloworld\","
        "\"Port\":8009,\"Check\":{\"CheckID\":\"service:helloworld-9\",\"TTL\":\"30s\","
        "\"Status\":\"passing\"}}'");
    Say("    curl -X PUT " + consul + "/v1/agent/check/fail/service:helloworld-9");
    Say("    curl -X PUT " + consul + "/v1/agent/service/deregister/helloworld-9");
    Say("    what each sink receives is printed below as it arrives.\n");
    following_ = true;
    while (!interrupted) std::this_thread::sleep_for(milliseconds(200));
  }

  void Stop() {
    if (bridge_) {
      bridge_->Stop();
      bridge_.reset();
    }
    stop_ = true;
    if (kafka_thread_.joinable()) kafka_thread_.join();
    heartbeats_.reset();
    receiver_.Stop();
    consul_.Stop();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  ConsulTestServer& consul() { return consul_; }
  Heartbeats& heartbeats() { return *heartbeats_; }

 private:
  struct Row {
    std::string step, event;
    bool kafka, webhook, log;
    std::string latency;
  };

  // The log sink writes CloudEvents lines on the bridge's stdout.
  bool InLog(const std::string& key) const {
    const auto space = key.find(' ');
    const std::string event = "\"event\":\"" + key.substr(0, space) + "\"";
    const std::string subject = "\"subject\":\"" + key.substr(space + 1) + "\"";
    std::istringstream lines(bridge_->process().Stdout());
    for (std::string line; std::getline(lines, line);) {
      if (line.find(event) != std::string::npos && line.find(subject) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  bool Fail(const std::string& why) {
    std::cerr << "demo: " << why << "\n";
    return false;
  }

  void Register(const Instance& instance) {
    consul_.RegisterService(json{{"ID", instance.id},
                                 {"Name", instance.service},
                                 {"Port", instance.port},
                                 {"Address", "127.0.0.1"},
                                 {"Tags", {"kratos", "v1.2.0"}},
                                 {"Meta", {{"version", "v1.2.0"}}},
                                 {"Check",
                                  {{"CheckID", "service:" + instance.id},
                                   {"TTL", kTtl},
                                   {"Status", "passing"},
                                   {"DeregisterCriticalServiceAfter", "1m"}}}});
  }

  void Record(Seen& seen, const json& event, const std::string& line) {
    std::lock_guard lock(seen.mutex);
    seen.events.emplace(Key(event), Clock::now());
    if (following_) Say(line);
  }

  void ConsumeKafka() {
    while (!stop_) {
      for (const auto& message : reader_->ReadAtLeast(1, milliseconds(200))) {
        const auto event = json::parse(message.value, nullptr, false);
        if (event.is_discarded()) continue;
        Record(kafka_seen_, event, "    kafka    key=" + message.key + "  " + Key(event));
      }
    }
  }

  void OnWebhook(const ReceivedRequest& request) {
    const auto event = json::parse(request.body, nullptr, false);
    if (event.is_discarded()) return;
    const auto key = hb::WebhookSigningKey(kSecret);
    const bool valid = key && hb::SignWebhook(*key, request.Header("webhook-id"),
                                              std::stoll(request.Header("webhook-timestamp")),
                                              request.body) == request.Header("webhook-signature");
    if (!valid) {
      Say("    webhook  BAD SIGNATURE for " + Key(event));
      return;
    }
    Record(webhook_seen_, event, "    webhook  signed ok  " + Key(event));
  }

  static bool Has(Seen& seen, const std::string& key) {
    std::lock_guard lock(seen.mutex);
    return seen.events.count(key) > 0;
  }
  static std::optional<Clock::time_point> At(Seen& seen, const std::string& key) {
    std::lock_guard lock(seen.mutex);
    auto it = seen.events.find(key);
    return it == seen.events.end() ? std::nullopt : std::optional(it->second);
  }

  std::vector<std::string> MetricsOf(const std::string& instance) {
    httplib::Client client("127.0.0.1", port_);
    auto response = client.Get("/metrics");
    std::vector<std::string> lines;
    if (!response) return lines;
    std::istringstream text(response->body);
    for (std::string line; std::getline(text, line);) {
      if (line.starts_with("#")) continue;
      const bool about_instance =
          line.find("service_id=\"" + instance + "\"") != std::string::npos &&
          (line.starts_with("health_bridge_instance_up") ||
           (line.starts_with("health_bridge_instance_status") && line.ends_with(" 1")));
      const std::string service = instance.substr(0, instance.rfind('-'));
      const bool about_service =
          line.starts_with("health_bridge_service_instances_up{service_name=\"" + service + "\"") ||
          (line.starts_with("health_bridge_deregistrations_total{") &&
           line.find("service_name=\"" + service + "\"") != std::string::npos);
      if (about_instance || about_service) lines.push_back(line);
    }
    return lines;
  }

  ConsulTestServer consul_;
  std::unique_ptr<Heartbeats> heartbeats_;
  MockKafkaCluster kafka_{1};
  std::unique_ptr<TopicReader> reader_;
  std::thread kafka_thread_;
  ScriptedHttpPeer receiver_{[this](std::size_t, const ReceivedRequest& request) {
    OnWebhook(request);
    return hb::test_support::Answer(204);
  }};
  std::filesystem::path directory_;
  std::unique_ptr<BridgeProcess> bridge_;
  int port_ = 0;
  Seen kafka_seen_;
  Seen webhook_seen_;
  std::vector<Row> summary_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> following_{false};
};

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path bridge_binary;
  bool follow = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--follow") {
      follow = true;
    } else if (arg == "--bridge" && i + 1 < argc) {
      bridge_binary = argv[++i];
    } else {
      std::cerr << "usage: health-bridge-demo --bridge PATH [--follow]\n";
      return 2;
    }
  }
  if (bridge_binary.empty()) {
    std::cerr << "usage: health-bridge-demo --bridge PATH [--follow]\n";
    return 2;
  }
  std::signal(SIGINT, [](int) { interrupted = true; });
  std::signal(SIGTERM, [](int) { interrupted = true; });

  Demo demo;
  if (!demo.Start(bridge_binary)) {
    demo.Stop();
    return 1;
  }
  if (follow) {
    demo.Follow();
    demo.Stop();
    return 0;
  }
  bool ok = true;
  ok &= demo.Step(
      "1 TTL lapses", "helloworld-2 stops heartbeating; its 3 s TTL lapses",
      [&] { demo.heartbeats().Stop("helloworld-2"); }, {"instance.down helloworld/helloworld-2"},
      "helloworld-2");
  ok &= demo.Step(
      "2 graceful shutdown", "payments-2 shuts down gracefully and deregisters",
      [&] {
        demo.heartbeats().Stop("payments-2");
        demo.consul().DeregisterService("payments-2");
      },
      {"instance.down payments/payments-2", "instance.deregistered payments/payments-2"},
      "payments-2");
  ok &= demo.Step(
      "3 last instance gone", "billing-1, the only instance of billing, goes away",
      [&] {
        demo.heartbeats().Stop("billing-1");
        demo.consul().DeregisterService("billing-1");
      },
      {"instance.down billing/billing-1", "instance.deregistered billing/billing-1",
       "service.down billing"},
      "billing-1");
  ok &= demo.Step(
      "4 recovery", "helloworld-2 heartbeats again",
      [&] {
        demo.heartbeats().Start("helloworld-2");
        demo.consul().UpdateCheck("service:helloworld-2", "passing", "ok");
      },
      {"instance.up helloworld/helloworld-2"}, "helloworld-2");
  demo.PrintSummary();
  demo.Stop();
  Say(ok ? "==> every expected event reached Kafka and the webhook"
         : "==> some expected events did not arrive");
  return ok ? 0 : 1;
}

// detection_latency: from an instance's check turning critical in Consul to
// the event being acknowledged, through the real health-bridge binary, next
// to the limit and a baseline, all watching the same flips of the same
// in-process Consul test server:
//   bare     BlockingQueryClient: a plain client holding the blocking query
//            (the limit: Consul's own notification, no delivery)
//   webhook  health-bridge -> webhook sink -> ScriptedHttpPeer (its 2xx)
//   kafka    health-bridge -> Kafka sink -> librdkafka mock cluster ->
//            TopicReader (an independent consumer)
//   poller   NaivePoller: ?passing for every service every --poll-period
//            (a baseline for comparison, not a product feature)
//
// The flips: --flips instances of the service "target", one every --spacing;
// even ones stay critical for --hold (longer than the poll period), odd ones
// flap back to passing after 0.3-3 s. Every tenth action deregisters an
// instance instead, which the poller cannot tell from a failure.
//
//   detection_latency --bridge PATH [--flips 60] [--spacing 250ms] [--hold 12s]
//                     [--poll-period 10s] [--services 50] [--samples-out FILE]
//
// Prints one JSON object on stdout; --samples-out writes every latency as
// "<path>\t<ms>" lines for the CDF plot. Not a test: figures, never assertions.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/blocking_query_client.h"
#include "bench/naive_poller.h"
#include "bench/scenario.h"
#include "config/duration.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/bridge_process.h"

namespace {

using hb::bench::Percentile;
using hb::bench::Registration;

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;
using Arrivals = std::map<std::string, Clock::time_point>;

constexpr char kTopic[] = "bench.health.events";
constexpr char kTarget[] = "target";

struct Options {
  std::string bridge;
  int flips = 60;
  milliseconds spacing{250};
  milliseconds hold{12000};
  milliseconds poll_period{10000};
  int services = 50;
  std::string samples_out;
};

// The first event of each instance whose type ends with `suffix`, from
// CloudEvents JSON bodies and the moment each was acknowledged.
void NoteEvent(const std::string& body, Clock::time_point at, const std::string& suffix,
               Arrivals& into) {
  const json event = json::parse(body, nullptr, false);
  if (event.is_discarded() || !event.value("type", "").ends_with(suffix)) return;
  into.try_emplace(event["data"]["instance_id"].get<std::string>(), at);
}

// Reads the topic on its own thread and timestamps each message as the
// independent consumer gets it.
class KafkaArrivals {
 public:
  explicit KafkaArrivals(const std::string& bootstraps)
      // librdkafka's mock broker answers an empty fetch only after the
      // consumer's fetch.wait.max.ms (500 ms by default) instead of when a
      // message arrives, as a real broker does: a short wait keeps that
      // out of the bridge's figure.
      : reader_(bootstraps, kTopic, 1, {{"fetch.wait.max.ms", "5"}}),
        thread_([this](std::stop_token stop) { Run(stop); }) {}

  Arrivals Of(const std::string& suffix) const {
    std::lock_guard lock(mutex_);
    Arrivals first;
    for (const auto& [body, at] : messages_) NoteEvent(body, at, suffix, first);
    return first;
  }

 private:
  void Run(std::stop_token stop) {
    while (!stop.stop_requested()) {
      // One consumer poll per call (it returns as soon as a message is in).
      auto read = reader_.ReadAtLeast(1, milliseconds(1));
      const auto at = Clock::now();
      std::lock_guard lock(mutex_);
      for (auto& message : read) messages_.emplace_back(std::move(message.value), at);
    }
  }

  hb::test_support::TopicReader reader_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, Clock::time_point>> messages_;  // guarded by mutex_
  std::jthread thread_;  // last: joins before the members it reads are gone
};

// The bridge under test: both sinks get every event.
std::string BridgeConfig(const std::string& consul, const std::string& webhook_url,
                         const std::string& brokers) {
  std::string config = "consul: {address: " + consul + "}\n";
  config += "sinks:\n";
  config += "  - {name: hooks, type: webhook, url: " + webhook_url + "}\n";
  config += "  - {name: topic, type: kafka, brokers: '" + brokers + "', topic: " + kTopic + "}\n";
  return config;
}

// The 1-minute load average: the machines are shared, and a busy neighbour
// shows in every latency here.
double LoadAverage() {
  double load = -1;
  std::ifstream("/proc/loadavg") >> load;
  return load;
}

json Summary(const std::vector<double>& ms, int expected) {
  json summary = {{"samples", ms.size()}, {"missed", expected - static_cast<int>(ms.size())}};
  if (!ms.empty()) {
    summary["p50_ms"] = Percentile(ms, 0.5);
    summary["p99_ms"] = Percentile(ms, 0.99);
    summary["max_ms"] = Percentile(ms, 1.0);
  }
  return summary;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long TotalRequests(hb::test_support::ConsulTestServer& consul) {
  long total = 0;
  for (const auto& [path, count] : consul.RequestCounts()) total += count;
  return total;
}

int Run(const Options& options) {
  hb::test_support::ConsulTestServerOptions server_options;
  hb::test_support::ConsulTestServer consul(server_options);
  if (consul.Start() == 0) {
    std::cerr << "detection_latency: cannot start the Consul test server\n";
    return 1;
  }
  // The target's instances: one per flip, plus the ones to deregister.
  struct Action {
    Clock::duration at{};
    std::string id;
    enum { kSustained, kFlap, kDeregister } kind = kSustained;
    Clock::duration hold{};
  };
  std::vector<Action> actions;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> flap_ms(300, 3000);
  for (int k = 0; k < options.flips; ++k) {
    Action action;
    action.at = k * options.spacing;
    action.id = std::string(kTarget) + "-" + std::to_string(k);
    if (k % 10 == 9) {
      action.kind = Action::kDeregister;
    } else if (k % 2 == 0) {
      action.kind = Action::kSustained;
      action.hold = options.hold;
    } else {
      action.kind = Action::kFlap;
      action.hold = milliseconds(flap_ms(rng));
    }
    consul.RegisterService(Registration(kTarget, action.id, "1h"));
    actions.push_back(std::move(action));
  }
  std::vector<std::string> services{kTarget};
  for (int s = 1; s < options.services; ++s) {
    services.push_back("svc-" + std::to_string(s));
    for (int i = 0; i < 4; ++i) {
      consul.RegisterService(
          Registration(services.back(), services.back() + "-" + std::to_string(i), "1h"));
    }
  }

  hb::test_support::MockKafkaCluster kafka(1);
  kafka.CreateTopic(kTopic, 1);
  hb::test_support::ScriptedHttpPeer receiver;
  KafkaArrivals kafka_arrivals(kafka.bootstraps());
  hb::test_support::BridgeProcess bridge(
      options.bridge, BridgeConfig(consul.address(), receiver.url(), kafka.bootstraps()));
  if (!bridge.ok()) {
    std::cerr << "detection_latency: the bridge never synced\n" << bridge.process().Stderr();
    return 1;
  }
  const std::string host = "127.0.0.1";
  hb::bench::BlockingQueryClient bare(host, consul.port(), kTarget);
  hb::bench::NaivePoller poller(host, consul.port(), services, options.poll_period);
  for (const auto deadline = Clock::now() + std::chrono::seconds(30);
       (!bare.synced() || poller.rounds() < 1) && Clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  // Warm both delivery paths, as a bridge that has run a while has them: the
  // first Kafka message waits for the producer's id and the topic's
  // metadata, the consumer's first fetch for its offsets (together about a
  // second, which landed on the first flips). A new service's registration
  // goes out to both sinks and is not one of the flips.
  consul.RegisterService(Registration("warmup", "warmup-0", "1h"));
  for (const auto deadline = Clock::now() + std::chrono::seconds(30);
       (kafka_arrivals.Of(".instance.registered").empty() || receiver.Accepted().empty()) &&
       Clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  // Start the flips at an arbitrary phase of the poll.
  std::this_thread::sleep_for(milliseconds(1000));

  const double load_before = LoadAverage();
  const long requests_before = TotalRequests(consul);
  const long bare_before = bare.requests();
  const long poller_before = poller.requests();
  const auto started = Clock::now();
  // Recoveries, due at a time; done between the flips as they fall due.
  std::multimap<Clock::time_point, std::string> recoveries;
  auto recover_due = [&](Clock::time_point until) {
    while (!recoveries.empty() && recoveries.begin()->first <= until) {
      std::this_thread::sleep_until(recoveries.begin()->first);
      consul.UpdateCheck("service:" + recoveries.begin()->second, "passing");
      recoveries.erase(recoveries.begin());
    }
  };
  std::map<std::string, Clock::time_point> critical_at;
  std::map<std::string, Clock::time_point> deregistered_at;
  for (const Action& action : actions) {
    recover_due(started + action.at);
    std::this_thread::sleep_until(started + action.at);
    if (action.kind == Action::kDeregister) {
      deregistered_at[action.id] = Clock::now();
      consul.DeregisterService(action.id);
      continue;
    }
    consul.UpdateCheck("service:" + action.id, "critical", "bench flip");
    // The server's own record of the moment, the reference for every path.
    critical_at[action.id] = consul.CriticalSince("service:" + action.id).value_or(Clock::now());
    recoveries.emplace(Clock::now() + action.hold, action.id);
  }
  recover_due(Clock::time_point::max());
  std::this_thread::sleep_for(milliseconds(2000));  // the last deliveries
  const double minutes = std::chrono::duration<double>(Clock::now() - started).count() / 60.0;
  const long bare_requests = bare.requests() - bare_before;
  const long poller_requests = poller.requests() - poller_before;
  // Every request the server saw that was not the bare client's or the poller's.
  const long bridge_requests =
      TotalRequests(consul) - requests_before - bare_requests - poller_requests;

  Arrivals webhook_down;
  Arrivals webhook_deregistered;
  for (const auto& request : receiver.Accepted()) {
    NoteEvent(request.body, request.arrived_at, ".instance.down", webhook_down);
    NoteEvent(request.body, request.arrived_at, ".instance.deregistered", webhook_deregistered);
  }
  const Arrivals kafka_down = kafka_arrivals.Of(".instance.down");
  const Arrivals bare_down = bare.TurnedCritical();
  const Arrivals vanished = poller.Vanished();
  const auto exit_code = bridge.Stop();

  std::ofstream samples_out;
  if (!options.samples_out.empty()) samples_out.open(options.samples_out, std::ios::app);
  std::map<std::string, std::vector<double>> latencies;
  std::vector<double> webhook_added;
  std::vector<double> kafka_added;
  int flaps = 0;
  int flaps_seen_by_poller = 0;
  int flaps_seen_by_webhook = 0;
  for (const Action& action : actions) {
    if (action.kind == Action::kDeregister) continue;
    const Clock::time_point critical = critical_at.at(action.id);
    auto latency = [&](const char* path, const Arrivals& arrivals) -> std::optional<double> {
      const auto it = arrivals.find(action.id);
      if (it == arrivals.end()) return std::nullopt;
      latencies[path].push_back(Ms(it->second - critical));
      if (samples_out) samples_out << path << '\t' << latencies[path].back() << '\n';
      return latencies[path].back();
    };
    const auto bare_ms = latency("bare", bare_down);
    const auto webhook_ms = latency("webhook", webhook_down);
    const auto kafka_ms = latency("kafka", kafka_down);
    if (bare_ms && webhook_ms) webhook_added.push_back(*webhook_ms - *bare_ms);
    if (bare_ms && kafka_ms) kafka_added.push_back(*kafka_ms - *bare_ms);
    if (action.kind == Action::kSustained) {
      latency("poller", vanished);
    } else {
      ++flaps;
      flaps_seen_by_poller += vanished.contains(action.id) ? 1 : 0;
      flaps_seen_by_webhook += webhook_down.contains(action.id) ? 1 : 0;
    }
  }
  const int flipped = static_cast<int>(critical_at.size());
  const int sustained = flipped - flaps;
  int deregistrations_vanished = 0;
  for (const auto& [id, at] : deregistered_at) deregistrations_vanished += vanished.contains(id);

  json report = {{"flips", flipped},
                 {"sustained", sustained},
                 {"flaps", flaps},
                 {"deregistrations", deregistered_at.size()},
                 {"services", options.services},
                 {"poll_period_s", std::chrono::duration<double>(options.poll_period).count()},
                 {"duration_s", minutes * 60.0},
                 {"bare", Summary(latencies["bare"], flipped)},
                 {"webhook", Summary(latencies["webhook"], flipped)},
                 {"kafka", Summary(latencies["kafka"], flipped)},
                 {"webhook_added", Summary(webhook_added, flipped)},
                 {"kafka_added", Summary(kafka_added, flipped)},
                 {"webhook_flaps_seen", flaps_seen_by_webhook},
                 {"webhook_deregistered_events", webhook_deregistered.size()},
                 {"poller",
                  {{"sustained", Summary(latencies["poller"], sustained)},
                   {"flaps_seen", flaps_seen_by_poller},
                   {"flaps_missed", flaps - flaps_seen_by_poller},
                   // Every vanishing, failure or deregistration alike: ?passing says
                   // only "gone", never why.
                   {"vanished_without_cause", vanished.size()},
                   {"deregistrations_seen_as_vanished", deregistrations_vanished},
                   {"requests_per_min", static_cast<double>(poller_requests) / minutes}}},
                 {"bare_requests_per_min", static_cast<double>(bare_requests) / minutes},
                 {"bridge_requests_per_min", static_cast<double>(bridge_requests) / minutes},
                 // Changes: each flip goes down and comes back, each deregistration once.
                 {"bridge_requests_per_change",
                  static_cast<double>(bridge_requests) /
                      static_cast<double>(2 * flipped + static_cast<int>(deregistered_at.size()))},
                 {"load_average", {load_before, LoadAverage()}},
                 {"bridge_exit_code", exit_code.value_or(-1)}};
  std::cout << report.dump(2) << std::endl;
  return exit_code == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  auto duration = [](const std::string& value, milliseconds fallback) {
    return hb::ParseDuration(value).value_or(fallback);
  };
  bool usable = argc % 2 == 1;  // flag and value pairs
  for (int i = 1; usable && i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    const std::string value = argv[i + 1];
    if (arg == "--bridge") {
      options.bridge = value;
    } else if (arg == "--flips") {
      options.flips = std::stoi(value);
    } else if (arg == "--spacing") {
      options.spacing = duration(value, options.spacing);
    } else if (arg == "--hold") {
      options.hold = duration(value, options.hold);
    } else if (arg == "--poll-period") {
      options.poll_period = duration(value, options.poll_period);
    } else if (arg == "--services") {
      options.services = std::stoi(value);
    } else if (arg == "--samples-out") {
      options.samples_out = value;
    } else {
      usable = false;
    }
  }
  if (!usable || options.bridge.empty() || options.flips < 2 || options.services < 1) {
    std::cerr << "usage: detection_latency --bridge PATH [--flips 60] [--spacing 250ms]"
                 " [--hold 12s] [--poll-period 10s] [--services 50] [--samples-out FILE]\n";
    return 2;
  }
  return Run(options);
}

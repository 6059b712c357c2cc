// sources_outage: one bridge binary watching three datacenters of S services
// each (watch.sources) on the Consul test server, one datacenter cut off
// ("No path to datacenter") for a while as C of its instances turn critical
// and D are deregistered, then restored. Reports what an operator relies
// on: events of the cut-off datacenter during the cut (expected: none),
// whether /readyz stayed ready and named it, how long after the restore
// every real change was reported and whether each was marked reconciled,
// anything reported that did not change, and the most connections the
// bridge held at once as the server counted them.
//
//   sources_outage --bridge PATH [--services 1000] [--cut 60s] [--changes 100]
//                  [--deregistrations 10] [--max-connections 100]
//
// Prints one JSON object on stdout. Not a test: figures, never assertions.

#include <httplib.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "bench/scenario.h"
#include "config/duration.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/process/bridge_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using hb::test_support::ConsulScope;
using nlohmann::json;
using std::chrono::milliseconds;

struct Options {
  std::string bridge;
  int services = 1000;
  milliseconds cut{60000};
  int changes = 100;
  int deregistrations = 10;
  int max_connections = 100;
};

struct Lines {
  std::size_t during_cut = 0;   // dc3 events while it was cut off
  std::set<std::string> downs;  // dc3 instance.down after the restore, by instance
  std::size_t deregistered = 0;
  std::size_t other = 0;  // dc3 events for instances that did not change
  std::size_t not_reconciled = 0;
};

// The dc3 events of the bridge's stdout from `from` on.
void Scan(const std::string& out, std::size_t from, bool cut, const std::set<std::string>& changed,
          Lines& lines) {
  for (std::size_t start = from; start < out.size();) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) break;
    const json event = json::parse(out.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (!event.is_object() || event["data"].value("datacenter", "") != "dc3") continue;
    if (cut) {
      ++lines.during_cut;
      continue;
    }
    const json& data = event["data"];
    const std::string type = data.value("event", "");
    const std::string id = data.value("instance_id", "");
    if (!data.value("reconciled", false)) ++lines.not_reconciled;
    if (type == "instance.down" && changed.contains(id)) {
      lines.downs.insert(id);
    } else if (type == "instance.deregistered" && changed.contains(id)) {
      ++lines.deregistered;
    } else if (!(type.starts_with("service.") &&
                 changed.contains(data.value("service", "") + "-1"))) {
      ++lines.other;
    }
  }
}

std::pair<int, std::string> Readyz(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(3);
  auto answer = client.Get("/readyz");
  return answer ? std::pair{answer->status, answer->body} : std::pair{0, std::string()};
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    ++i;
    if (arg == "--bridge") {
      options.bridge = value;
    } else if (arg == "--services") {
      options.services = std::stoi(value);
    } else if (arg == "--cut") {
      options.cut = hb::ParseDuration(value).value_or(options.cut);
    } else if (arg == "--changes") {
      options.changes = std::stoi(value);
    } else if (arg == "--deregistrations") {
      options.deregistrations = std::stoi(value);
    } else if (arg == "--max-connections") {
      options.max_connections = std::stoi(value);
    } else {
      std::cerr << "sources_outage: unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (options.bridge.empty() || options.changes + options.deregistrations > options.services) {
    std::cerr << "sources_outage: --bridge PATH needed; changes + deregistrations <= services\n";
    return 2;
  }

  hb::test_support::ConsulTestServer consul;
  if (consul.Start() == 0) return 1;
  consul.AddDatacenter("dc2");
  consul.AddDatacenter("dc3");
  for (const std::string dc : {"", "dc2", "dc3"}) {
    for (int i = 0; i < options.services; ++i) {
      const std::string service = "svc-" + std::to_string(i);
      consul.RegisterService(ConsulScope{.datacenter = dc},
                             hb::bench::Registration(service, service + "-1", "1h"));
    }
  }
  consul.ResetPeakConnections();
  hb::test_support::ChildProcess::Options env;
  env.env["CONSUL_HTTP_ADDR"] = consul.address();
  const auto started = Clock::now();
  hb::test_support::BridgeProcess bridge(
      options.bridge,
      "consul: {max_connections: " + std::to_string(options.max_connections) +
          "}\nwatch:\n  sources: [{}, {datacenter: dc2}, {datacenter: dc3}]\n"
          "sinks:\n  - {name: stdout, type: log}\n",
      env, std::chrono::seconds(120));
  if (!bridge.ok()) {
    std::cerr << bridge.process().Stderr();
    return 1;
  }
  while (Readyz(bridge.port()).first != 200) {
    if (Clock::now() - started > std::chrono::minutes(5)) return 1;
    std::this_thread::sleep_for(milliseconds(20));
  }
  const double sync_seconds = std::chrono::duration<double>(Clock::now() - started).count();

  // The cut: half way through it, the changes.
  consul.CutDatacenter("dc3", true);
  const std::size_t cut_from = bridge.process().Stdout().size();
  const auto cut_at = Clock::now();
  std::this_thread::sleep_for(options.cut / 2);
  std::set<std::string> changed;
  for (int i = 0; i < options.changes; ++i) {
    const std::string id = "svc-" + std::to_string(i) + "-1";
    consul.UpdateCheck(ConsulScope{.datacenter = "dc3"}, "service:" + id, "critical");
    changed.insert(id);
  }
  for (int i = options.changes; i < options.changes + options.deregistrations; ++i) {
    const std::string id = "svc-" + std::to_string(i) + "-1";
    consul.DeregisterService(ConsulScope{.datacenter = "dc3"}, id);
    changed.insert(id);
  }
  const auto [ready_status, ready_body] = Readyz(bridge.port());
  const auto source_up = bridge.Metric("health_bridge_source_up", "source=\"dc3\"");
  std::this_thread::sleep_until(cut_at + options.cut);
  Lines lines;
  const std::string during = bridge.process().Stdout();
  Scan(during, cut_from, true, changed, lines);

  consul.CutDatacenter("dc3", false);
  const auto restored = Clock::now();
  double reconciled_seconds = -1;
  while (Clock::now() - restored < std::chrono::minutes(5)) {
    Lines after;
    Scan(bridge.process().Stdout(), during.size(), false, changed, after);
    if (after.downs.size() == static_cast<std::size_t>(options.changes + options.deregistrations) &&
        after.deregistered == static_cast<std::size_t>(options.deregistrations)) {
      reconciled_seconds = std::chrono::duration<double>(Clock::now() - restored).count();
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  // A moment for anything spurious to follow, then the final count.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  Scan(bridge.process().Stdout(), during.size(), false, changed, lines);
  bridge.Stop();

  json report = {
      {"datacenters", 3},
      {"services_per_datacenter", options.services},
      {"max_connections", options.max_connections},
      {"cut_seconds", std::chrono::duration<double>(options.cut).count()},
      {"changes", options.changes},
      {"deregistrations", options.deregistrations},
      {"sync_seconds", sync_seconds},
      {"events_of_cut_datacenter_during_cut", lines.during_cut},
      {"readyz_during_cut", {{"status", ready_status}, {"body", ready_body}}},
      {"source_up_during_cut", source_up ? json(*source_up) : json(nullptr)},
      {"downs_reported_after_restore", lines.downs.size()},
      {"deregistrations_reported_after_restore", lines.deregistered},
      {"seconds_to_report_every_change", reconciled_seconds},
      {"events_not_marked_reconciled", lines.not_reconciled},
      {"events_for_unchanged_instances", lines.other},
      {"peak_connections", consul.PeakConnections()},
  };
  std::cout << report.dump(2) << std::endl;
  return 0;
}

// spool_replay: what replaying a full spool after a restart costs the
// bridge binary. Fills a sink's spool in state.dir up to spool.max_bytes
// (256 MiB by default) with instance events, as a sink that was down for a
// long time leaves it, then starts `health-bridge` on it with the Consul
// test server and a log sink (a cheap sink that keeps nothing per event or
// per instance: the figures are the replay path's, not a destination's)
// and waits until the sink's queue depth is 0. Reports the bridge's peak RSS (VmHWM) during the
// replay, and the same for a start on an empty spool for comparison.
//
//   spool_replay --bridge PATH [--spool-bytes 256MiB] [--capacity 10000]
//
// Prints one JSON object on stdout. Not a test: figures, never assertions.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "bench/scenario.h"
#include "bridge/model/event_codec.h"
#include "bridge/spool/spool.h"
#include "config/byte_size.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/sample_events.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kSink[] = "replayed";
constexpr int kServices = 20;
constexpr int kInstancesPerService = 100;

struct Options {
  std::string bridge;
  std::uint64_t spool_bytes = std::uint64_t{256} << 20;
  std::size_t capacity = 10000;
};

// kB from a "Name:   1234 kB" line of /proc/<pid>/status.
long StatusKib(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

struct Filled {
  std::size_t events = 0;
  std::uint64_t bytes = 0;
};

// Appends events until the spool refuses one: full, as a sink down for long
// leaves it.
Filled Fill(const std::filesystem::path& dir, std::uint64_t max_bytes) {
  hb::SpoolRecovery recovery;
  auto spool = hb::Spool::Open({dir, max_bytes}, recovery).value();
  Filled filled;
  for (std::uint64_t index = 1;; ++index) {
    const int service = static_cast<int>(index % kServices);
    const int instance = static_cast<int>((index / kServices) % kInstancesPerService);
    hb::Event event = hb::test_support::InstanceEvent(
        "svc-" + std::to_string(service) + "-" + std::to_string(instance),
        index % 2 == 0 ? hb::EventType::kInstanceDown : hb::EventType::kInstanceUp, index,
        "svc-" + std::to_string(service));
    if (!spool->Append(hb::EncodeEvent(event)).ok()) break;
    ++filled.events;
  }
  if (!spool->Sync().ok()) std::cerr << "spool_replay: sync failed\n";
  filled.bytes = spool->bytes();
  return filled;
}

struct Run {
  double seconds = 0;
  double peak_rss_mib = 0;
  double rss_after_mib = 0;
  bool drained = false;
};

Run StartAndDrain(const Options& options, const hb::test_support::ConsulTestServer& consul,
                  const std::filesystem::path& state_dir) {
  std::ostringstream config;
  config << "consul: {address: " << consul.address() << "}\n"
         << "state: {dir: " << state_dir.string() << "}\n"
         << "sinks:\n"
         << "  - name: " << kSink << "\n"
         << "    type: log\n"
         << "    queue: {capacity: " << options.capacity << "}\n";
  const auto started = Clock::now();
  hb::test_support::BridgeProcess bridge(options.bridge, config.str(), {}, std::chrono::minutes(5));
  Run run;
  if (!bridge.ok()) {
    std::cerr << "spool_replay: the bridge did not start\n" << bridge.process().Stderr();
    return run;
  }
  const std::string labels = std::string("sink=\"") + kSink + "\"";
  const auto deadline = started + std::chrono::minutes(20);
  while (Clock::now() < deadline) {
    const auto depth = bridge.Metric("health_bridge_sink_queue_depth", labels);
    if (depth && *depth == 0) {
      run.drained = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  run.peak_rss_mib = static_cast<double>(StatusKib(bridge.process().pid(), "VmHWM")) / 1024;
  run.rss_after_mib = static_cast<double>(StatusKib(bridge.process().pid(), "VmRSS")) / 1024;
  if (bridge.Stop() != 0) std::cerr << "spool_replay: the bridge did not stop cleanly\n";
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--bridge") {
      options.bridge = value;
    } else if (flag == "--spool-bytes") {
      auto parsed = hb::ParseByteSize(value);
      if (!parsed) {
        std::cerr << "spool_replay: --spool-bytes: expected a size such as 256MiB\n";
        return 2;
      }
      options.spool_bytes = *parsed;
    } else if (flag == "--capacity") {
      options.capacity = std::stoul(value);
    } else {
      std::cerr << "spool_replay: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (options.bridge.empty()) {
    std::cerr << "usage: spool_replay --bridge PATH [--spool-bytes 256MiB] [--capacity 10000]\n";
    return 2;
  }

  hb::test_support::ConsulTestServer consul;
  if (consul.Start() == 0) return 1;
  consul.RegisterService(hb::bench::Registration("svc-0", "svc-0-0", "10m"));
  const auto root =
      std::filesystem::temp_directory_path() / ("hb-spool-replay-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);

  const Run empty = StartAndDrain(options, consul, root / "empty");
  const auto fill_started = Clock::now();
  const Filled filled = Fill(root / "full" / "spool" / kSink, options.spool_bytes);
  const double fill_seconds = std::chrono::duration<double>(Clock::now() - fill_started).count();
  const Run full = StartAndDrain(options, consul, root / "full");
  std::filesystem::remove_all(root);

  const json report = {
      {"spool_bytes", filled.bytes},
      {"spool_max_bytes", options.spool_bytes},
      {"events", filled.events},
      {"bytes_per_event", filled.events ? static_cast<double>(filled.bytes) / filled.events : 0},
      {"queue_capacity", options.capacity},
      {"fill_seconds", fill_seconds},
      {"replay_drained", full.drained},
      {"replay_seconds", full.seconds},
      {"replay_events_per_second", full.seconds > 0 ? filled.events / full.seconds : 0},
      {"peak_rss_mib", full.peak_rss_mib},
      {"rss_after_mib", full.rss_after_mib},
      {"empty_peak_rss_mib", empty.peak_rss_mib},
  };
  std::cout << report.dump() << std::endl;
  return full.drained ? 0 : 1;
}

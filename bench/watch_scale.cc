// watch_scale: the bridge binary at scale against the Consul test server.
// Registers S services x I instances, runs `health-bridge` with the log sink,
// and reports what an operator sizes a pod by: time to the first complete
// sync, RSS, threads, CPU at idle, the latency from a TTL check lapsing in
// Consul to its instance.down line on the bridge's stdout, and how long a
// change of 1% of the instances at once takes to come out, and the most
// connections the bridge held at once as the server counted them. The server
// enforces Consul's default limit of 200 connections per client IP.
//
//   watch_scale --bridge PATH [--services 5000] [--instances 4] [--samples 200]
//               [--idle 10s] [--max-connections N] [--server-limit N]
//               [--no-metrics-sink]
//
// --max-connections sets consul.max_connections (default: the bridge's,
// 100); 10000 gives every service a query of its own, the design before the
// budget, which works only while that fits under the server's limit.
// --server-limit sets the server's connections per client IP (default 200,
// Consul's; 0 turns the limit off, to measure the design before the budget
// past 200 services, as a reference). --no-metrics-sink turns off the
// default metrics sink (server.default_metrics_sink: false), whose
// per-instance series are most of the RSS at 100,000 instances.
//
// Prints one JSON object on stdout. Not a test: figures, never assertions.

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/scenario.h"
#include "config/duration.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/process/child_process.h"

namespace {

using hb::bench::Percentile;
using hb::bench::Registration;

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;

struct Options {
  std::string bridge;
  int services = 5000;
  int instances = 4;
  int samples = 200;
  milliseconds idle{10000};
  int max_connections = 0;  // 0: the bridge's default
  int server_limit = 200;   // Consul's limits.http_max_conns_per_client
  bool metrics_sink = true;
};

// /proc/<pid>/status and /proc/<pid>/stat of the bridge.
struct ProcessFigures {
  long rss_kib = 0;
  int threads = 0;
  double cpu_seconds = 0;
};

ProcessFigures Measure(pid_t pid) {
  ProcessFigures figures;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) figures.rss_kib = std::stol(line.substr(6));
    if (line.starts_with("Threads:")) figures.threads = std::stoi(line.substr(8));
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::vector<std::string> fields{std::istream_iterator<std::string>(rest), {}};
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  figures.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  return figures;
}

// Reads the bridge's stdout and remembers when each instance.down arrived.
class DownLines {
 public:
  explicit DownLines(int fd) : fd_(fd), reader_([this] { Run(); }) {}
  ~DownLines() {
    stop_ = true;
    reader_.join();
  }

  std::optional<Clock::time_point> WaitFor(const std::string& instance, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (auto it = seen_.find(instance); it != seen_.end()) return it->second;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    return std::nullopt;
  }

 private:
  void Run() {
    std::string buffer;
    char chunk[65536];
    while (!stop_) {
      pollfd ready{fd_, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return;
      const auto arrived = Clock::now();
      buffer.append(chunk, static_cast<std::size_t>(n));
      for (std::size_t end; (end = buffer.find('\n')) != std::string::npos;) {
        const json event = json::parse(buffer.substr(0, end), nullptr, false);
        buffer.erase(0, end + 1);
        if (event.is_discarded() || event.value("type", "") != "io.healthbridge.instance.down") {
          continue;
        }
        std::lock_guard lock(mutex_);
        seen_.emplace(event["data"]["instance_id"].get<std::string>(), arrived);
      }
    }
  }

  const int fd_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::unordered_map<std::string, Clock::time_point> seen_;
  std::thread reader_;
};

int Run(const Options& options) {
  hb::test_support::ConsulTestServerOptions server_options;  // Consul's limits, on
  server_options.max_conns_per_client = static_cast<std::size_t>(options.server_limit);
  // Every open connection (a held blocking query) occupies one server
  // thread; it sleeps in a futex or poll() until it has work.
  hb::test_support::ConsulTestServer consul(server_options);
  if (consul.Start() == 0) {
    std::cerr << "watch_scale: cannot start the Consul test server\n";
    return 1;
  }
  for (int s = 0; s < options.services; ++s) {
    const std::string service = "svc-" + std::to_string(s);
    for (int i = 0; i < options.instances; ++i) {
      consul.RegisterService(Registration(service, service + "-" + std::to_string(i), "1h"));
    }
  }

  const auto config = std::filesystem::temp_directory_path() /
                      ("hb-watch-scale-" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(config);
    out << "server: {listen: 127.0.0.1:0"
        << (options.metrics_sink ? "" : ", default_metrics_sink: false") << "}\n"
        << "sinks:\n  - name: stdout\n    type: log\n";
    if (options.max_connections > 0) {
      out << "consul: {max_connections: " << options.max_connections << "}\n";
    }
  }
  // Registrations went through the server's API, not over connections.
  consul.ResetPeakConnections();
  hb::test_support::ChildProcess::Options child_options;
  child_options.env["CONSUL_HTTP_ADDR"] = consul.address();
  child_options.pipe_stdout = true;
  const auto started = Clock::now();
  hb::test_support::ChildProcess bridge(options.bridge, {"--config", config.string()},
                                        child_options);
  DownLines lines(bridge.stdout_pipe());
  if (!bridge.WaitForStderr("initial sync complete", milliseconds(600000))) {
    std::cerr << "watch_scale: the bridge never synced\n" << bridge.Stderr();
    return 1;
  }
  const double sync_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  // How much of the sync was the bridge's own work (the rest is the test
  // server, which shares the cores, and waiting).
  const double sync_cpu_seconds = Measure(bridge.pid()).cpu_seconds;

  // Let the sync's work settle. libcurl fires each transfer's connect timer
  // once, connect_timeout (5 s) after the transfer started, even on a reused
  // connection: at 10,000 services the timers of the sync's last transfers
  // cost about 0.15 s of CPU over the 5 s after it (measured; with a 2 s
  // connect timeout the tail is 2 s). That belongs to the sync, not to rest.
  std::this_thread::sleep_for(milliseconds(7000));
  auto requests = [&consul] {
    long total = 0;
    for (const auto& [path, count] : consul.RequestCounts()) total += count;
    return total;
  };
  const long requests_before = requests();
  const ProcessFigures before = Measure(bridge.pid());
  std::this_thread::sleep_for(options.idle);
  const ProcessFigures after = Measure(bridge.pid());
  const double idle_requests_per_s = static_cast<double>(requests() - requests_before) /
                                     std::chrono::duration<double>(options.idle).count();
  const double idle_cpu_percent = 100.0 * (after.cpu_seconds - before.cpu_seconds) /
                                  std::chrono::duration<double>(options.idle).count();

  // TTL lapse → stdout: re-register an instance with a short TTL and wait
  // for it to lapse; the server records the moment the check turned critical.
  std::mt19937 rng(42);
  std::vector<double> latencies_ms;
  int missed = 0;
  // Each instance is sampled once: DownLines keeps the first down line of an
  // instance, so a second draw would find the old line at once and the check
  // already passing again (seed 42 draws svc-1528-3 twice at 5,000 services).
  std::set<std::string> sampled;
  const long requests_before_samples = requests();
  for (int sample = 0; sample < options.samples; ++sample) {
    std::string service;
    std::string id;
    do {
      service = "svc-" + std::to_string(1 + rng() % (options.services - 1));
      id = service + "-" + std::to_string(sample % options.instances);
    } while (!sampled.insert(id).second);
    consul.RegisterService(Registration(service, id, "100ms"));
    const auto arrived = lines.WaitFor(id, milliseconds(10000));
    const auto critical = consul.CriticalSince("service:" + id);
    if (!arrived || !critical) {
      ++missed;
    } else {
      latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(*arrived - *critical).count());
    }
    consul.RegisterService(Registration(service, id, "1h"));  // back up for the next round
  }
  // Each sample is three changes of one service (re-registered with a short
  // TTL, lapsed to critical, re-registered passing); at idle the bridge asks
  // nothing, so what it asked meanwhile is what the changes cost.
  const double requests_per_change =
      static_cast<double>(requests() - requests_before_samples) / (3.0 * options.samples);

  // A 1% change: that many instances (none sampled above) turn critical at
  // once, spread over the services; timed from the first flip to the last
  // instance.down line. Consul wakes each changed service's query once, so
  // the bridge should ask about as many health requests as services changed.
  const int total_instances = options.services * options.instances;
  const int changed = std::max(1, total_instances / 100);
  std::vector<std::string> flipped;
  std::set<std::string> changed_services;
  while (static_cast<int>(flipped.size()) < changed) {
    const int n = static_cast<int>(rng() % static_cast<unsigned>(total_instances));
    const std::string service = "svc-" + std::to_string(n / options.instances);
    const std::string id = service + "-" + std::to_string(n % options.instances);
    if (!sampled.insert(id).second) continue;
    flipped.push_back(id);
    changed_services.insert(service);
  }
  const long requests_before_change = requests();
  const auto change_started = Clock::now();
  for (const auto& id : flipped) consul.UpdateCheck("service:" + id, "critical", "1% change");
  const double flip_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - change_started).count();
  Clock::time_point last_down = change_started;
  int change_missed = 0;
  for (const auto& id : flipped) {
    const auto arrived = lines.WaitFor(id, milliseconds(30000));
    if (!arrived) {
      ++change_missed;
    } else {
      last_down = std::max(last_down, *arrived);
    }
  }
  const double change_ms =
      std::chrono::duration<double, std::milli>(last_down - change_started).count();
  std::this_thread::sleep_for(milliseconds(500));  // any request the change still causes
  const double requests_per_changed_service =
      static_cast<double>(requests() - requests_before_change) /
      static_cast<double>(changed_services.size());
  const ProcessFigures loaded = Measure(bridge.pid());
  bridge.Signal(SIGTERM);
  const auto exit_code = bridge.Wait(milliseconds(30000));
  std::filesystem::remove(config);

  json report = {{"services", options.services},
                 {"design", options.max_connections < 10000 ? "budget"
                            : options.server_limit == 0     ? "query per service, no limit"
                                                            : "query per service"},
                 {"max_connections", options.max_connections > 0 ? options.max_connections : 100},
                 {"server_limit", options.server_limit},
                 {"metrics_sink", options.metrics_sink},
                 {"peak_connections", consul.PeakConnections()},
                 {"refused_connections", consul.RefusedConnections()},
                 {"instances", options.services * options.instances},
                 {"initial_sync_s", sync_seconds},
                 {"initial_sync_cpu_s", sync_cpu_seconds},
                 {"rss_mib_idle", static_cast<double>(after.rss_kib) / 1024.0},
                 {"rss_mib_after_samples", static_cast<double>(loaded.rss_kib) / 1024.0},
                 {"threads", after.threads},
                 {"idle_cpu_percent", idle_cpu_percent},
                 {"idle_requests_per_s", idle_requests_per_s},
                 {"consul_requests_per_change", requests_per_change},
                 {"samples", latencies_ms.size()},
                 {"missed", missed},
                 {"one_percent_change",
                  {{"instances", changed},
                   {"services", changed_services.size()},
                   {"flip_ms", flip_ms},
                   {"all_down_ms", change_ms},
                   {"missed", change_missed},
                   {"requests_per_changed_service", requests_per_changed_service}}},
                 {"exit_code", exit_code.value_or(-1)}};
  if (!latencies_ms.empty()) {
    report["ttl_to_stdout_ms"] = {{"median", Percentile(latencies_ms, 0.5)},
                                  {"p99", Percentile(latencies_ms, 0.99)},
                                  {"max", Percentile(latencies_ms, 1.0)}};
  }
  std::cout << report.dump(2) << std::endl;
  return missed == 0 && change_missed == 0 && exit_code == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--no-metrics-sink") {
      options.metrics_sink = false;
      continue;
    }
    if (arg == "--bridge") {
      options.bridge = value;
    } else if (arg == "--services") {
      options.services = std::stoi(value);
    } else if (arg == "--instances") {
      options.instances = std::stoi(value);
    } else if (arg == "--samples") {
      options.samples = std::stoi(value);
    } else if (arg == "--max-connections") {
      options.max_connections = std::stoi(value);
    } else if (arg == "--server-limit") {
      options.server_limit = std::stoi(value);
    } else if (arg == "--idle") {
      options.idle = hb::ParseDuration(value).value_or(options.idle);
    } else {
      std::cerr << "usage: watch_scale --bridge PATH [--services 5000] [--instances 4]"
                   " [--samples 200] [--idle 10s] [--max-connections N] [--server-limit N]"
                   " [--no-metrics-sink]\n";
      return 2;
    }
    ++i;
  }
  if (options.bridge.empty() || options.services < 2 || options.instances < 1 ||
      options.server_limit < 0) {
    std::cerr << "watch_scale: --bridge PATH is required; --services >= 2\n";
    return 2;
  }
  return Run(options);
}

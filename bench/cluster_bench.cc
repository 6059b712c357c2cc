// cluster_bench: three health-bridge replicas in cluster mode on the Consul
// test server, with continuous churn across many services. Reports what
// sizing and failover planning need: the load split between the replicas
// (services owned by each, against an even third), each replica's RSS and
// Consul connections, and the takeover time after a kill -9 of one replica
// (per service it owned: from the kill until another replica's session
// held the service's lock), p50 and p99, against 2 x session_ttl +
// lock_delay. Then a rolling restart (SIGTERM, start) of each replica:
// how long its services had no owner. The write-ahead (before each
// published batch, its unacknowledged events written to Consul KV): how
// long it held a batch back, from the replicas' histograms after 20 s of
// churn.
//
//   cluster_bench --bridge PATH [--services 10000] [--ttl-seconds 3]
//                 [--lock-delay-seconds 1]
//
// Prints one JSON object on stdout. Not a test: figures, never assertions.

#include <dirent.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/scenario.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/process/bridge_process.h"

namespace {

using hb::bench::Percentile;
using hb::bench::Registration;
using hb::test_support::BridgeProcess;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::vector<std::string> kReplicas = {"r1", "r2", "r3"};
constexpr const char* kPrefix = "bench/cluster";

std::string Service(int i) { return "service-" + std::to_string(i); }

long RssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

// TCP connections of `pid` to `port` on loopback: its socket inodes matched
// against the established sockets of /proc/net/tcp whose remote port is it.
int ConnectionsTo(pid_t pid, int port) {
  std::set<std::string> inodes;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* dir = ::opendir(fd_dir.c_str())) {
    while (dirent* entry = ::readdir(dir)) {
      char target[256] = {};
      const std::string link = fd_dir + "/" + entry->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      const std::string text(target, static_cast<std::size_t>(n));
      if (text.starts_with("socket:[")) inodes.insert(text.substr(8, text.size() - 9));
    }
    ::closedir(dir);
  }
  char remote_port[8];
  std::snprintf(remote_port, sizeof(remote_port), "%04X", port);
  int count = 0;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    if (state == "01" && remote.ends_with(std::string(":") + remote_port) &&
        inodes.contains(inode)) {
      ++count;
    }
  }
  return count;
}

class ClusterBench {
 public:
  ClusterBench(std::string bridge, int services, int ttl_seconds, int lock_delay_seconds)
      : bridge_(std::move(bridge)),
        services_(services),
        ttl_seconds_(ttl_seconds),
        lock_delay_seconds_(lock_delay_seconds) {
    hb::test_support::ConsulTestServerOptions options;
    options.sessions.min_ttl = seconds(1);
    // Consul's 200 connections per client IP, for three replicas that would
    // each have an address of their own: here all three are 127.0.0.1.
    options.max_conns_per_client = 200 * kReplicas.size();
    consul_ = std::make_unique<hb::test_support::ConsulTestServer>(options);
  }

  json Run() {
    json out = {{"services", services_},
                {"session_ttl_s", ttl_seconds_},
                {"lock_delay_s", lock_delay_seconds_}};
    if (consul_->Start() == 0) return {{"error", "the Consul test server did not start"}};
    for (int i = 0; i < services_; ++i) {
      const std::string error =
          consul_->RegisterService(Registration(Service(i), Service(i) + "-1", "1h"));
      if (!error.empty()) return {{"error", error}};
    }
    for (const auto& id : kReplicas) {
      if (!Start(id)) return {{"error", "replica " + id + " did not start"}};
    }
    if (!WaitSettled(kReplicas, seconds(180))) return {{"error", "the replicas never settled"}};

    json split = json::object();
    double worst = 0;
    for (const auto& id : kReplicas) {
      const double owned = Owned(id);
      const double even = static_cast<double>(services_) / static_cast<double>(kReplicas.size());
      worst = std::max(worst, std::abs(owned - even) / even);
      split[id] = {{"owned", owned},
                   {"rss_mib", static_cast<double>(RssKib(Pid(id))) / 1024.0},
                   {"consul_connections", ConnectionsTo(Pid(id), ConsulPort())}};
    }
    out["split"] = split;
    out["split_worst_deviation_pct"] = worst * 100.0;

    std::atomic<bool> churning{true};
    std::atomic<int> changes{0};
    std::thread churn([&] {
      std::mt19937 random(7);
      std::uniform_int_distribution<int> pick(0, services_ - 1);
      std::map<int, bool> critical;
      while (churning.load()) {
        const int i = pick(random);
        critical[i] = !critical[i];
        consul_->UpdateCheck("service:" + Service(i) + "-1", critical[i] ? "critical" : "passing");
        ++changes;
        // A change every 10 ms: the load, not a wait for a result.
        std::this_thread::sleep_for(milliseconds(10));
      }
    });

    // The write-ahead under churn: what each published batch waited for
    // its Consul transaction, summed over the replicas.
    std::this_thread::sleep_for(seconds(20));  // the churn the figure covers
    out["write_ahead"] = WriteAheadLatency();

    // kill -9 r2: per service it held, the time until another session
    // holds the lock.
    const std::map<std::string, std::string> before = LockHolders();
    const std::string victim_session = MemberSession("r2");
    std::set<std::string> victims;
    for (const auto& [service, session] : before) {
      if (session == victim_session) victims.insert(service);
    }
    const auto killed_at = Clock::now();
    bridges_["r2"]->Kill();
    std::map<std::string, double> taken;
    // When Consul reaped the session (its member key let go): what follows
    // the reaping plus the lock-delay is the survivors' own share.
    std::optional<double> reaped_s;
    const auto deadline = killed_at + seconds(4 * ttl_seconds_ + lock_delay_seconds_ + 30);
    while (taken.size() < victims.size() && Clock::now() < deadline) {
      if (!reaped_s && MemberSession("r2") != victim_session) {
        reaped_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
      }
      const auto holders = LockHolders();
      const double elapsed = std::chrono::duration<double>(Clock::now() - killed_at).count();
      for (const auto& service : victims) {
        if (taken.contains(service)) continue;
        auto it = holders.find(service);
        if (it != holders.end() && !it->second.empty() && it->second != victim_session) {
          taken[service] = elapsed;
        }
      }
      std::this_thread::sleep_for(milliseconds(50));  // the sampling period of the figure
    }
    std::vector<double> takeovers;
    for (const auto& [service, at] : taken) takeovers.push_back(at);
    out["kill"] = {{"services_of_killed", victims.size()},
                   {"taken_over", taken.size()},
                   {"bound_s", 2 * ttl_seconds_ + lock_delay_seconds_}};
    if (!takeovers.empty()) {
      out["kill"]["takeover_p50_s"] = Percentile(takeovers, 0.5);
      out["kill"]["takeover_p99_s"] = Percentile(takeovers, 0.99);
      out["kill"]["takeover_max_s"] = Percentile(takeovers, 1.0);
      if (reaped_s) {
        // Sampled every 50 ms or so, like the takeovers.
        const double locks_free_s = *reaped_s + lock_delay_seconds_;
        out["kill"]["reaped_s"] = *reaped_s;
        out["kill"]["after_lock_delay_p50_s"] = Percentile(takeovers, 0.5) - locks_free_s;
        out["kill"]["after_lock_delay_p99_s"] = Percentile(takeovers, 0.99) - locks_free_s;
      }
    }
    if (!Start("r2") || !WaitSettled(kReplicas, seconds(180))) {
      churning = false;
      churn.join();
      return {{"error", "r2 did not come back"}};
    }

    // Rolling restart: each replica SIGTERMed, the longest a service of it
    // had no owner, then started again.
    json rolling = json::object();
    for (const auto& id : kReplicas) {
      const auto holders = LockHolders();
      const std::string session = MemberSession(id);
      std::set<std::string> mine;
      for (const auto& [service, holder] : holders) {
        if (holder == session) mine.insert(service);
      }
      const auto stopped_at = Clock::now();
      const auto exit_code = bridges_[id]->Stop(seconds(60));
      const double stop_s = std::chrono::duration<double>(Clock::now() - stopped_at).count();
      std::set<std::string> owned_again;
      const auto until = Clock::now() + seconds(60);
      while (owned_again.size() < mine.size() && Clock::now() < until) {
        for (const auto& [service, holder] : LockHolders()) {
          if (mine.contains(service) && !holder.empty() && holder != session) {
            owned_again.insert(service);
          }
        }
        std::this_thread::sleep_for(milliseconds(50));
      }
      rolling[id] = {
          {"services", mine.size()},
          {"exit_code", exit_code.value_or(-1)},
          {"sigterm_to_exit_s", stop_s},
          {"all_owned_again_s", std::chrono::duration<double>(Clock::now() - stopped_at).count()},
          {"owned_again", owned_again.size()}};
      if (!Start(id) || !WaitSettled(kReplicas, seconds(180))) {
        churning = false;
        churn.join();
        return {{"error", id + " did not come back"}};
      }
    }
    out["rolling_restart"] = rolling;
    churning = false;
    churn.join();
    out["changes"] = changes.load();
    for (const auto& id : kReplicas) bridges_[id]->Stop(seconds(60));
    return out;
  }

 private:
  bool Start(const std::string& id) {
    std::ostringstream config;
    config << "consul: {address: " << consul_->address() << "}\n"
           << "cluster: {enabled: true, prefix: " << kPrefix << ", member_id: " << id
           << ", session_ttl: " << ttl_seconds_ << "s, lock_delay: " << lock_delay_seconds_
           << "s}\n"
           << "state: {shutdown_timeout: 10s}\n";
    bridges_[id] = std::make_unique<BridgeProcess>(bridge_, config.str(),
                                                   hb::test_support::ChildProcess::Options{},
                                                   std::chrono::seconds(180));
    return bridges_[id]->ok();
  }

  // health_bridge_cluster_write_ahead_seconds of every replica, summed:
  // batches, mean, and p50/p99 as the upper bound of the bucket they fall in.
  json WriteAheadLatency() {
    const std::string name = "health_bridge_cluster_write_ahead_seconds";
    std::map<double, double> buckets;  // le -> cumulative count
    double count = 0;
    double sum = 0;
    for (const auto& id : kReplicas) {
      httplib::Client http("127.0.0.1", bridges_[id]->port());
      auto answer = http.Get("/metrics");
      if (!answer || answer->status != 200) continue;
      std::istringstream lines(answer->body);
      for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with(name)) continue;
        const double value = std::stod(line.substr(line.rfind(' ') + 1));
        if (line.starts_with(name + "_count")) {
          count += value;
        } else if (line.starts_with(name + "_sum")) {
          sum += value;
        } else if (const auto le = line.find("le=\"");
                   le != std::string::npos && line.find("+Inf") == std::string::npos) {
          buckets[std::stod(line.substr(le + 4))] += value;
        }
      }
    }
    json out = {{"batches", count}, {"mean_ms", count > 0 ? 1000 * sum / count : 0.0}};
    for (const auto& [label, quantile] :
         {std::pair{"p50_le_ms", 0.5}, std::pair{"p99_le_ms", 0.99}}) {
      for (const auto& [le, cumulative] : buckets) {
        if (cumulative >= quantile * count) {
          out[label] = 1000 * le;
          break;
        }
      }
    }
    return out;
  }

  double Owned(const std::string& id) {
    return bridges_[id]->Metric("health_bridge_cluster_services_owned").value_or(-1);
  }
  pid_t Pid(const std::string& id) { return bridges_[id]->process().pid(); }
  int ConsulPort() {
    const std::string address = consul_->address();
    return std::stoi(address.substr(address.rfind(':') + 1));
  }

  // Every service owned, every replica sees all members, and the split has
  // not moved for a second (a replica that just joined takes its share a
  // little at a time, while the sum already adds up).
  bool WaitSettled(const std::vector<std::string>& live, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<double> previous;
    int stable = 0;
    while (Clock::now() < deadline) {
      double owned = 0;
      bool all = true;
      std::vector<double> split;
      for (const auto& id : live) {
        const double mine = Owned(id);
        if (mine <= 0 || bridges_[id]->Metric("health_bridge_cluster_members").value_or(0) !=
                             static_cast<double>(live.size())) {
          all = false;
        }
        owned += mine;
        split.push_back(mine);
      }
      stable = all && owned == services_ && split == previous ? stable + 1 : 0;
      if (stable >= 5) return true;
      previous = split;
      std::this_thread::sleep_for(milliseconds(200));  // polling period
    }
    return false;
  }

  std::string KvGet(const std::string& path) {
    httplib::Client http(consul_->address());
    http.set_read_timeout(10, 0);
    auto answer = http.Get(path);
    return answer && answer->status == 200 ? answer->body : "";
  }

  // Service -> session holding its lock ("" when none), read in the test
  // server's process: sampled every 50 ms, an HTTP read of 10,000 entries
  // would load the server it measures.
  std::map<std::string, std::string> LockHolders() {
    std::map<std::string, std::string> holders;
    const std::string prefix = std::string(kPrefix) + "/services/";
    for (auto& [key, session] : consul_->KvHolders(prefix)) {
      holders.emplace(key.substr(prefix.size()), std::move(session));
    }
    return holders;
  }
  std::string MemberSession(const std::string& id) {
    const auto answer = KvGet(std::string("/v1/kv/") + kPrefix + "/members/" + id);
    const json entries = json::parse(answer, nullptr, false);
    if (!entries.is_array() || entries.empty()) return "";
    return entries[0].value("Session", "");
  }

  const std::string bridge_;
  const int services_;
  const int ttl_seconds_;
  const int lock_delay_seconds_;
  std::unique_ptr<hb::test_support::ConsulTestServer> consul_;
  std::map<std::string, std::unique_ptr<BridgeProcess>> bridges_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string bridge;
  int services = 10000;
  int ttl = 3;
  int lock_delay = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--bridge") {
      bridge = value;
    } else if (flag == "--services") {
      services = std::stoi(value);
    } else if (flag == "--ttl-seconds") {
      ttl = std::stoi(value);
    } else if (flag == "--lock-delay-seconds") {
      lock_delay = std::stoi(value);
    } else {
      std::cerr << "cluster_bench: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (bridge.empty()) {
    std::cerr << "usage: cluster_bench --bridge PATH [--services N] [--ttl-seconds S] "
                 "[--lock-delay-seconds S]\n";
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  ClusterBench bench(bridge, services, ttl, lock_delay);
  std::cout << bench.Run().dump(2) << std::endl;
  return 0;
}

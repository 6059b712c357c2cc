#include "bench/blocking_query_client.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

namespace hb::bench {

BlockingQueryClient::BlockingQueryClient(const std::string& host, int port, std::string service,
                                         std::chrono::seconds wait)
    : client_(host, port), service_(std::move(service)), wait_(wait), thread_([this] { Run(); }) {}

BlockingQueryClient::~BlockingQueryClient() {
  stop_ = true;
  client_.stop();  // ends a held request now rather than after `wait_`
  thread_.join();
}

std::map<std::string, BlockingQueryClient::Clock::time_point> BlockingQueryClient::TurnedCritical()
    const {
  std::lock_guard lock(mutex_);
  return turned_critical_;
}

void BlockingQueryClient::Run() {
  client_.set_keep_alive(true);
  client_.set_tcp_nodelay(true);
  client_.set_read_timeout(wait_ + std::chrono::seconds(5));  // the server adds up to wait/16
  std::uint64_t index = 0;
  std::set<std::string> critical;
  while (!stop_) {
    const std::string path = "/v1/health/service/" + service_ + "?index=" + std::to_string(index) +
                             "&wait=" + std::to_string(wait_.count()) + "s";
    ++requests_;
    // As Consul's Go client (and the bridge) ask: the server's gzip time is
    // part of the limit, not of what the bridge adds.
    const auto response = client_.Get(path.c_str(), {{"Accept-Encoding", "gzip"}});
    const auto arrived = Clock::now();
    if (!response || response->status != 200) {
      if (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    // Consul: an index that went backwards (a restore) means start over from 0.
    // A missing header reads as 0.
    const std::uint64_t next =
        std::strtoull(response->get_header_value("X-Consul-Index").c_str(), nullptr, 10);
    index = next < index ? 0 : next;
    const auto entries = nlohmann::json::parse(response->body, nullptr, false);
    if (entries.is_discarded()) continue;
    std::set<std::string> now_critical;
    for (const auto& entry : entries) {
      for (const auto& check : entry["Checks"]) {
        if (check.value("Status", "") == "critical") {
          now_critical.insert(entry["Service"]["ID"].get<std::string>());
          break;
        }
      }
    }
    if (synced_) {
      std::lock_guard lock(mutex_);
      for (const auto& id : now_critical) {
        if (!critical.contains(id)) turned_critical_.try_emplace(id, arrived);
      }
    }
    critical = std::move(now_critical);
    synced_ = true;
  }
}

}  // namespace hb::bench

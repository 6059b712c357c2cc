#pragma once

// The watch: discovers services through a blocking query on
// /v1/catalog/services, keeps one blocking health query per watched service
// on /v1/health/service/<name> (never with ?passing: an instance that stops
// passing must stay visible to be reported), hands every complete answer to
// the transition engine and publishes the events it implies.
//
// Threads: all watch logic, and every call into the engine, runs on the
// Consul client's event-loop thread, so neither needs locks and thousands of
// watched services share one thread. The public methods are thread-safe.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "bridge/common/clock.h"
#include "bridge/common/status.h"
#include "bridge/consul/answer_parsers.h"
#include "bridge/consul/consul_client.h"
#include "bridge/model/event_publisher.h"
#include "bridge/state/transition_engine.h"
#include "bridge/watch/service_filter.h"

namespace hb {

struct WatcherOptions {
  // Which services to watch. Default: all but "consul".
  ServiceFilterOptions services;
  // Datacenter to watch. Default: "" = the local agent's, read from
  // /v1/agent/self at start.
  std::string datacenter;
  // Readiness turns false once Consul has been unreachable (every request
  // failing) for longer than this. Default: 30s.
  std::chrono::milliseconds unreachable_grace{std::chrono::seconds(30)};
  // Delay before asking /v1/agent/self again after a failure; doubles up to
  // the maximum. Default: 500ms, 30s.
  std::chrono::milliseconds agent_retry_initial{500};
  std::chrono::milliseconds agent_retry_max{std::chrono::seconds(30)};
};

// A consistent copy of the watch's health, for /readyz and metrics.
struct WatchState {
  bool initial_sync_done = false;
  bool ready = false;
  std::string datacenter;
  std::size_t watched_services = 0;
  // The error of the current failure streak, if Consul is failing now.
  std::optional<Status> last_error;
  std::optional<SteadyTime> unreachable_since;
  // Wall time of the last successful Consul answer.
  std::optional<WallTime> last_success;
};

class Watcher {
 public:
  // `client` and `publisher` must outlive the watcher. The watcher owns the
  // engine (restore saved state into it before handing it over).
  Watcher(WatcherOptions options, ConsulClient& client, std::unique_ptr<TransitionEngine> engine,
          EventPublisher& publisher, const Clock& clock);
  // Stops every query; no callback touches the watcher afterwards.
  ~Watcher();

  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Starts discovery. Returns at once; progress shows in State().
  void Start();
  // Stops accepting Consul answers and cancels every query. Blocks until the
  // loop thread has dropped them. Idempotent.
  void Stop();

  WatchState State() const;
  // Runs `visit` with the engine on the watch thread and waits for it, e.g.
  // to copy the instance view or save state. Works after Stop() too: the
  // engine keeps what it had reported (the final state save reads it).
  void WithEngine(const std::function<void(const TransitionEngine&)>& visit);

  // Config reload: services the new filter drops are handed to the engine
  // as gone, services it adds are watched; the engine's new options apply
  // from its next evaluation. Both wait for the watch thread.
  void UpdateServiceFilter(ServiceFilterOptions services);
  void UpdateEngineOptions(EngineOptions options);

 private:
  struct ServiceWatch;

  // Loop-thread only from here on.
  void FetchDatacenter();
  void StartCatalogWatch();
  Status OnCatalog(const QueryAnswer& answer);
  void ApplyCatalog(std::uint64_t index);
  Status OnHealth(const std::string& service, const QueryAnswer& answer);
  void OnError(const Status& error);
  void OnSuccess();
  void StartServiceWatch(const std::string& service);
  void MaybeCompleteInitialSync();
  void Publish(std::vector<Event> events);
  void ScheduleTick();
  void RunOnLoopAndWait(const std::function<void()>& task);

  const WatcherOptions options_;
  ServiceFilter filter_;  // loop thread
  ConsulClient& client_;
  std::unique_ptr<TransitionEngine> engine_;
  EventPublisher& publisher_;
  const Clock& clock_;

  // Loop-thread state.
  std::string datacenter_;
  std::chrono::milliseconds agent_retry_delay_;
  std::unique_ptr<BlockingQuery> catalog_query_;
  bool catalog_seen_ = false;
  CatalogServices catalog_;  // the last answer, for a filter change
  std::uint64_t catalog_index_ = 0;
  std::map<std::string, std::unique_ptr<ServiceWatch>, std::less<>> services_;
  std::size_t unsynced_services_ = 0;  // watched, no complete answer yet
  std::optional<SteadyTime> tick_deadline_;
  std::optional<EventLoop::TimerId> tick_timer_;
  std::optional<EventLoop::TimerId> agent_retry_timer_;
  // Expires when the watcher stops; callbacks that outlive it check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  mutable std::mutex state_mutex_;
  WatchState state_;                // GUARDED_BY(state_mutex_)
  bool permission_denied_ = false;  // GUARDED_BY(state_mutex_)
  bool stopped_ = false;            // GUARDED_BY(state_mutex_)
};

}  // namespace hb

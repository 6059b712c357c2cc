#pragma once

// The watch of one source (a datacenter, or a peer's, namespace's or
// partition's part of one; watcher.h runs one per source): discovers services through a blocking
// query on /v1/catalog/services, reads each watched service's complete answer of
// /v1/health/service/<name> (never with ?passing: an instance that stops
// passing must stay visible to be reported), hands every complete answer to
// the transition engine and publishes the events it implies.
//
// Inside a connection budget (ConsulClientOptions::max_connections, B):
// - the catalog watch takes one connection;
// - as many services as fit in B - 2 - R get a blocking query each
//   (dedicated), and keep it while they exist;
// - the rest (covered) share one blocking query on /v1/health/state/any
//   filtered to the checks that are not passing (ChangeDetector): a
//   service whose check entered, left or changed within that set, or with
//   an instance on a node whose node check did, is re-read with a plain
//   GET, at most R at once (R = B/10, 1 to 8). A move of the catalog's
//   index (a registration, a deregistration, a tag, meta, address or port
//   change, an instance without checks) is explained by the catalog's own
//   answer (a service added, removed or retagged), by a health answer at
//   that index, or by the filtered answer (a check written at that index;
//   its answer may arrive a moment after the catalog's, so the move waits
//   for it, a short grace at most). A move none explains costs one plain
//   read of the whole checks table (in a read slot), parsed and diffed
//   against the previous one on a worker thread, so the watch thread keeps
//   handling answers meanwhile; a move that read does not explain either
//   re-reads every covered service, since the catalog does not say which
//   one changed. Explained moves schedule such a sweep within a safety
//   delay, as one answer can hide several writes.
// Connections are never abandoned mid-wait: Consul would keep the slot
// until the wait ends. A query that is no longer wanted is retired (its
// request runs out) and its slot is reused afterwards.
//
// Threads: all watch logic, and every call into the engine, runs on the
// Consul client's event-loop thread, so neither needs locks and thousands of
// watched services share one thread. The one exception is the parse and diff
// of a whole checks table, on a worker thread that hands the result back to
// the loop (at most one table at a time). The public methods are
// thread-safe.

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "bridge/common/backoff.h"
#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/consul/answer_parsers.h"
#include "bridge/consul/consul_client.h"
#include "bridge/model/event_publisher.h"
#include "bridge/state/transition_engine.h"
#include "bridge/watch/change_detector.h"
#include "bridge/watch/service_filter.h"
#include "bridge/watch/worker_thread.h"

namespace hb {

// One source of several (watch.sources).
struct WatchSource {
  // Datacenter to query. Default: "" = WatcherOptions::datacenter.
  std::string datacenter;
  std::string peer;               // a cluster peer's imported services. Default: ""
  std::string ns;                 // namespace. Default: "" = Consul's default
  std::string partition;          // admin partition. Default: "" = Consul's default
  ServiceFilterOptions services;  // which of its services to watch
  // Wildcards: the entry is a template the watcher expands at run time
  // into one source per datacenter of /v1/catalog/datacenters (`all`), per
  // active peering of /v1/peerings (`all`), per partition of
  // /v1/partitions (`*`), per namespace of /v1/namespaces (`*`), in every
  // combination the entry names. The name field is empty then.
  bool all_datacenters = false;
  bool all_peers = false;
  bool all_namespaces = false;
  bool all_partitions = false;

  bool IsTemplate() const {
    return all_datacenters || all_peers || all_namespaces || all_partitions;
  }
  bool operator==(const WatchSource&) const = default;
};

struct WatcherOptions {
  // Which services to watch. Default: all but "consul".
  ServiceFilterOptions services;
  // Datacenter to watch. Default: "" = the local agent's, read from
  // /v1/agent/self at start.
  std::string datacenter;
  // Several sources, each watched on its own (its own queries, indexes,
  // readiness and errors) into one engine. Default: empty = one source,
  // `datacenter` with `services`.
  std::vector<WatchSource> sources;
  // With templates (WatchSource::IsTemplate()): at most this many sources
  // are watched at once, sharing the connection budget evenly as they come
  // and go, 3 connections at least each (one connection goes to listing
  // them; watcher.h); sources found past it are refused (shown
  // unavailable) until one goes. Default: 16.
  std::size_t max_sources = 16;
  // A source found at run time that is no longer listed (a datacenter gone
  // from the WAN, a peering no longer active, a namespace deleted) keeps
  // being watched this long, then is dropped silently. Default: 10m.
  std::chrono::milliseconds source_grace{std::chrono::minutes(10)};
  // How often the lists that expand templates are read (none of Consul's
  // list endpoints that expand them all block). Default: 30s.
  std::chrono::milliseconds source_list_interval{std::chrono::seconds(30)};
  // Set by Watcher for each SourceWatch: the source's peer, namespace and
  // partition, and its first share of ConsulClientOptions::max_connections
  // (0 = all of it; SetConnectionBudget() changes it).
  SourceScope scope;
  std::size_t connection_budget = 0;
  // Readiness turns false once Consul has been unreachable (every request
  // failing) for longer than this. Default: 30s.
  std::chrono::milliseconds unreachable_grace{std::chrono::seconds(30)};
  // Delay before asking /v1/agent/self again after a failure; doubles up to
  // the maximum. Default: 500ms, 30s.
  std::chrono::milliseconds agent_retry_initial{500};
  std::chrono::milliseconds agent_retry_max{std::chrono::seconds(30)};
  // An explained catalog move still re-reads every covered service within
  // this delay (one answer can hide a second write, e.g. an instance
  // without checks registered at once). Default: 30s.
  std::chrono::milliseconds safety_sweep_delay{std::chrono::seconds(30)};
  // A catalog move waits at most this long for the change detector's answer
  // at its index before the whole checks table is read: Consul wakes both
  // queries for one write, in either order, and the detector's answer
  // explains most moves (a registration whose check starts critical, a
  // re-registration that turns a check passing). Default: 25ms.
  std::chrono::milliseconds catalog_move_grace{25};
  // Reads of the whole checks table (a request and its parse) take at most
  // this share of the time: after one that took T, the next waits until
  // T * (1 / share - 1) has passed. Moves meanwhile are settled together by
  // that next read. A registration storm so costs Consul and the bridge a
  // bounded load whatever the datacenter's size, and a passing registration
  // is seen at worst that much later (about 0.1 s at 10,000 instances, a few
  // seconds at 100,000). In (0, 1]. Default: 0.25.
  double table_read_share = 0.25;
  // A peer source asks /v1/peerings this often whether its peering is
  // active. Default: 10s.
  std::chrono::milliseconds peering_poll_interval{std::chrono::seconds(10)};
};

// A consistent copy of the watch's health, for /readyz and metrics.
struct WatchState {
  bool initial_sync_done = false;
  bool ready = false;
  std::string datacenter;
  // The source's key (SourceKey(): "dc2", "dc1/peer:east"); with several
  // sources, the aggregate's is the first source's.
  std::string source;
  std::size_t watched_services = 0;
  // The error of the current failure streak, if Consul is failing now.
  std::optional<Status> last_error;
  std::optional<SteadyTime> unreachable_since;
  // Wall time of the last successful Consul answer.
  std::optional<WallTime> last_success;
  // How the watched services are read: a blocking query each, or covered
  // by the change detector.
  std::size_t dedicated_services = 0;
  std::size_t covered_services = 0;
  // The source's share of consul.max_connections now (0 = no budget).
  std::size_t connection_budget = 0;
};

// How a budget of connections is spent. `max_connections` >= 3.
struct ConnectionPlan {
  std::size_t reads = 0;      // concurrent plain reads of covered services
  std::size_t dedicated = 0;  // services with a blocking query of their own
  static ConnectionPlan For(std::size_t max_connections);
};

// The change detector's filter: the checks that are not passing.
inline constexpr std::string_view kNotPassingFilter = R"(Status != "passing")";

class SourceWatch {
 public:
  // `client`, `engine` and `publisher` must outlive the watch; several
  // watches share one engine, all on the client's loop thread.
  SourceWatch(WatcherOptions options, ConsulClient& client, TransitionEngine& engine,
              EventPublisher& publisher, const Clock& clock);
  // Stops every query; no callback touches the watcher afterwards.
  ~SourceWatch();

  SourceWatch(const SourceWatch&) = delete;
  SourceWatch& operator=(const SourceWatch&) = delete;

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

  // `changed` runs on the watch thread after the engine changed, once per
  // turn of the loop however many answers that turn applied (e.g. to copy
  // what changed for /v1/instances). Set it before Start().
  void OnEngineChanged(std::function<void(const TransitionEngine&)> changed);

  // A new share of the connection budget (>= 3), applied on the loop
  // thread; waits for it. Shrinking moves the dedicated services past the
  // new plan to the covered path, last names first: their queries are
  // retired (each keeps its connection until its wait ends, see
  // ConnectionsCommitted()) and each is read once on the covered path, so
  // nothing between its last answer and the change detector's baseline is
  // missed. Growing promotes covered services as slots free up, each with
  // a fresh read. Ignored with no budget (0).
  void SetConnectionBudget(std::size_t max_connections);
  // Loop thread: the connections this source holds or may open, the most
  // of its budget and what it holds now (retired queries still waiting out
  // past a smaller budget included).
  std::size_t ConnectionsCommitted() const;
  // Loop thread: the budget the source plans with.
  std::size_t connection_budget() const { return budget_; }
  // `freed` runs on the loop thread (posted) each time a retired query
  // ended and let its connection go. Set it before Start().
  void OnConnectionFreed(std::function<void()> freed);

 private:
  struct ServiceWatch;

  struct CoveredService;

  // Loop-thread only from here on.
  void FetchDatacenter();
  void StartCatalogWatch();
  Status OnCatalog(const QueryAnswer& answer);
  // `catalog_moved`: the catalog's index moved, so any covered service may
  // have changed in ways no check shows; `explained`: the answer itself
  // shows what changed (a service added, removed or retagged).
  void ApplyCatalog(std::uint64_t index, bool catalog_moved, bool explained = false);
  Status OnHealth(const std::string& service, const QueryAnswer& answer);
  // The one path of every complete health answer into the engine.
  Status ApplyHealth(const std::string& service, std::string_view body, std::uint64_t index,
                     SteadyTime received_at, bool covered);
  void OnError(const Status& error);
  void OnSuccess();
  // A peer source: polls /v1/peerings; while its peering is not ACTIVE the
  // source is paused (unavailable, answers kept, not applied).
  void PollPeering();
  void SetPeeringState(const std::string& state);
  bool SourceInitialSyncDone() const;
  // Marks the notifying events of a service read after an outage.
  static void MarkReconciled(std::vector<Event>& events);
  // " (source <key>)" for log lines when there are several sources.
  std::string SourceSuffix() const;
  // A failure of one service's own read (its blocking query or a covered
  // read). It never makes Consul "unreachable": a service whose answers are
  // unusable (a bomb, a lying index, broken JSON) must not take readiness
  // from the bridge while Consul answers everything else; the catalog and
  // the change detector say whether Consul is reachable (a refused token,
  // HTTP 403, still counts at once). Its last known state stays. It stops
  // holding up the initial sync at once when Consul answered but the answer
  // was unusable (malformed, too large) or did not arrive within the read's
  // deadline while Consul answers the rest (a drip), else after
  // kUnreadableAfter failures in a row. Returns whether the error is of that first kind
  // (Consul answered).
  bool OnServiceError(const std::string& service, const Status& error);
  // The service's answer reached the engine: its failure streak ends.
  void OnServiceRead(const std::string& service);
  void StartServiceWatch(const std::string& service);
  // Hands a query over to run out its request; its slot is free afterwards.
  void Retire(std::unique_ptr<BlockingQuery> query, bool dedicated_slot);
  // Fills free dedicated slots with covered services, and starts or
  // retires the change detector as covered services come and go.
  void Rebalance();
  Status OnChecks(const QueryAnswer& answer);
  // One plain read of the whole checks table, for catalog moves the
  // filtered answer does not explain; it settles the moves up to `settles`.
  void StartTableRead();
  void OnTableRead(std::uint64_t settles, StatusOr<ReadAnswer> answer);
  struct TableJob;
  // The worker's parse and diff of a table read, back on the loop thread.
  void OnTableDiffed(std::uint64_t settles, TableJob& job);
  // Reads the whole table for the unexplained moves, once the detector's
  // answer at their index came (or the grace ran out) without explaining
  // them.
  void WantTableRead();
  void BackOffReads();
  void QueueRead(const std::string& service, bool urgent);
  void PumpReads();
  void OnRead(const std::string& service, StatusOr<ReadAnswer> answer);
  void UpdateCounts();
  // A catalog move to `index` with covered services: read the whole table
  // unless something explains it; sweep if that read does not either, or
  // once the safety delay passed when it does.
  void OnCatalogMoved(std::uint64_t index, bool explained);
  // Whether a health answer came at `index`: Consul's index of a service's
  // health is the raft index of its last write.
  bool ServiceAnsweredAt(std::uint64_t index) const;
  void ScheduleSafetySweep();
  // Drops the moves the detector explains; with `settled_up_to`, the moves
  // up to that index that a table read did not explain sweep.
  void ResolveCatalogMoves(std::optional<std::uint64_t> settled_up_to);
  void Sweep();
  void MaybeCompleteInitialSync();
  // Every change of the engine passes here with its events.
  void Publish(std::vector<Event> events);
  void ScheduleTick();

  const WatcherOptions options_;
  ServiceFilter filter_;  // loop thread
  ConsulClient& client_;
  // Every request of this source carries it (RequestScope: ?dc, ?peer, ?ns,
  // ?partition), so its indexes never reach another source.
  const RequestScope request_scope_;
  TransitionEngine* const engine_;
  EventPublisher& publisher_;
  const Clock& clock_;

  // Loop-thread state.
  std::string datacenter_;
  std::chrono::milliseconds agent_retry_delay_;
  std::unique_ptr<BlockingQuery> catalog_query_;
  bool catalog_seen_ = false;
  CatalogServices catalog_;   // the last answer, for a filter change
  std::string catalog_body_;  // its text, to skip an identical one
  std::uint64_t catalog_index_ = 0;
  std::map<std::string, std::unique_ptr<ServiceWatch>, std::less<>> services_;  // dedicated
  std::map<std::string, CoveredService, std::less<>> covered_;
  std::size_t unsynced_services_ = 0;  // watched, no complete answer yet
  // Consecutive failures of each service's own reads, while they last.
  struct ServiceFailures {
    int count = 0;
    bool warned = false;  // an unusable answer was logged: log the recovery too
  };
  std::map<std::string, ServiceFailures, std::less<>> service_failures_;
  // After the source was unavailable (every request failing), each
  // service's first answer is a reconciliation: its events say what
  // changed meanwhile, marked reconciled. Holds the services not read
  // since the source came back.
  std::set<std::string, std::less<>> reconciling_;
  // A peer source whose peering is not active (or not known yet): answers
  // are kept, the latest per service, and applied when it is active again.
  bool paused_ = false;
  bool peering_known_ = false;
  bool resuming_ = false;  // applying the kept catalog: departures are reconciled
  struct PausedAnswer {
    std::string body;
    std::uint64_t index = 0;
    SteadyTime received_at{};
    bool covered = false;
  };
  std::map<std::string, PausedAnswer, std::less<>> paused_answers_;
  std::optional<EventLoop::TimerId> peering_timer_;
  // Services that stopped holding up the initial sync without an answer:
  // the end of the sync keeps their restored state instead of calling them
  // gone.
  std::set<std::string, std::less<>> unread_at_sync_;
  static constexpr int kUnreadableAfter = 3;
  std::size_t budget_;  // 0 = none
  ConnectionPlan plan_;
  std::function<void()> connection_freed_;
  // Queries running out their request, by a key; `dedicated` ones hold a
  // dedicated slot until then.
  struct RetiringQuery {
    std::unique_ptr<BlockingQuery> query;
    bool dedicated = false;
  };
  std::map<std::uint64_t, RetiringQuery> retiring_;
  std::uint64_t next_retiring_ = 0;
  std::size_t retiring_dedicated_ = 0;
  // The change detector's query: started when the first service is covered,
  // then kept (its slot is reserved in the plan either way).
  std::unique_ptr<BlockingQuery> checks_query_;
  ChangeDetector detector_;
  // Covered services waiting for a read: detector hits first, then sweeps.
  std::deque<std::string> urgent_reads_;
  std::deque<std::string> sweep_reads_;
  std::size_t reads_in_flight_ = 0;
  std::size_t sweep_reads_in_flight_ = 0;
  int read_failures_ = 0;
  std::optional<EventLoop::TimerId> read_retry_timer_;
  // Catalog moves the detector has not explained yet; whether a read of the
  // whole checks table is due or running; the safety sweep's timer.
  std::vector<std::uint64_t> unexplained_moves_;
  bool table_read_wanted_ = false;
  bool table_read_in_flight_ = false;  // read, or parsed and diffed on the worker
  std::optional<EventLoop::TimerId> catalog_grace_timer_;
  // When the last table read started, and when the next may (its share).
  SteadyTime table_read_started_{};
  SteadyTime table_read_not_before_{};
  std::optional<EventLoop::TimerId> table_read_timer_;
  std::optional<EventLoop::TimerId> safety_sweep_timer_;
  // The indexes of the last health answers (dedicated and covered), to
  // explain catalog moves; bounded.
  std::deque<std::uint64_t> recent_service_indexes_;
  JitterRng rng_{std::random_device{}()};
  std::function<void(const TransitionEngine&)> engine_changed_;
  bool engine_change_posted_ = false;
  std::optional<SteadyTime> tick_deadline_;
  std::optional<EventLoop::TimerId> tick_timer_;
  std::optional<EventLoop::TimerId> agent_retry_timer_;
  // Expires when the watcher stops; callbacks that outlive it check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  mutable Mutex state_mutex_;
  WatchState state_ GUARDED_BY(state_mutex_);
  bool permission_denied_ GUARDED_BY(state_mutex_) = false;
  bool stopped_ GUARDED_BY(state_mutex_) = false;

  // Parses and diffs table reads; started with the change detector. Last:
  // destroyed (joined) first, while everything its task may name exists.
  std::unique_ptr<WorkerThread> table_worker_;
};

}  // namespace hb

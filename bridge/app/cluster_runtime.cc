#include "bridge/app/cluster_runtime.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <limits>

#include "bridge/cluster/handover_state.h"
#include "bridge/cluster/pending_events.h"
#include "bridge/watch/service_filter.h"
#include "config/config_reader.h"

namespace hb {

// The cluster's metrics (README "Metrics", cluster section).
class ClusterMetrics final : public ClusterObserver {
 public:
  explicit ClusterMetrics(prometheus::Registry& registry)
      : members_(prometheus::BuildGauge()
                     .Name("health_bridge_cluster_members")
                     .Help("Live bridge replicas this replica sees in the cluster (member keys "
                           "held by a session).")
                     .Register(registry)
                     .Add({})),
        watched_(prometheus::BuildGauge()
                     .Name("health_bridge_cluster_services_watched")
                     .Help("Watched services this replica knows of; every one should be owned "
                           "by one replica (the sum of health_bridge_cluster_services_owned).")
                     .Register(registry)
                     .Add({})),
        owned_(prometheus::BuildGauge()
                   .Name("health_bridge_cluster_services_owned")
                   .Help("Services whose lock this replica holds and whose takeover ran: it emits "
                         "their events.")
                   .Register(registry)
                   .Add({})),
        acquisitions_(prometheus::BuildCounter()
                          .Name("health_bridge_cluster_lock_acquisitions_total")
                          .Help("Service locks this replica acquired (each a new epoch).")
                          .Register(registry)
                          .Add({})),
        losses_(prometheus::BuildCounter()
                    .Name("health_bridge_cluster_lock_losses_total")
                    .Help("Service locks lost with this replica's Consul session (not handed "
                          "over): its session was reaped or invalidated.")
                    .Register(registry)
                    .Add({})),
        renew_failures_(prometheus::BuildCounter()
                            .Name("health_bridge_cluster_session_renew_failures_total")
                            .Help("Failed renewals of this replica's Consul session.")
                            .Register(registry)
                            .Add({})),
        takeover_(prometheus::BuildHistogram()
                      .Name("health_bridge_cluster_takeover_seconds")
                      .Help("From the moment the membership gave this replica a service to the "
                            "moment it held the service's lock (waiting for the previous "
                            "owner's release, or its session's expiry and lock-delay).")
                      .Register(registry)
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.1, 0.5, 1, 2.5, 5,
                                                                       10, 15, 30, 60, 120})),
        write_ahead_(prometheus::BuildHistogram()
                         .Name("health_bridge_cluster_write_ahead_seconds")
                         .Help("How long the write-ahead of a published batch (its events not yet "
                               "acknowledged, written to Consul KV) held the batch back.")
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025,
                                                                          0.005, 0.01, 0.025, 0.05,
                                                                          0.1, 0.25, 0.5, 1, 2.5})),
        write_ahead_failures_(
            prometheus::BuildCounter()
                .Name("health_bridge_cluster_write_ahead_failures_total")
                .Help("Published batches whose write-ahead to Consul KV failed: their events "
                      "were emitted all the same, but a successor would not know them if this "
                      "replica died before they were acknowledged.")
                .Register(registry)
                .Add({})),
        pending_left_out_(
            prometheus::BuildCounter()
                .Name("health_bridge_cluster_pending_left_out_total")
                .Help("Unacknowledged events left out of a service's write-ahead (the oldest, "
                      "beyond 128 KiB per service), summed over writes.")
                .Register(registry)
                .Add({})) {}

  void OnMembers(std::size_t live) override { members_.Set(static_cast<double>(live)); }
  void OnServicesWatched(std::size_t services) override {
    watched_.Set(static_cast<double>(services));
  }
  void OnOwned(std::size_t services) override { owned_.Set(static_cast<double>(services)); }
  void OnLockAcquired() override { acquisitions_.Increment(); }
  void OnLockLost(std::size_t count) override { losses_.Increment(static_cast<double>(count)); }
  void OnSessionRenewFailed() override { renew_failures_.Increment(); }
  void OnTakeover(std::chrono::duration<double> waited) override {
    takeover_.Observe(waited.count());
  }
  void OnWriteAhead(std::chrono::duration<double> took) override {
    write_ahead_.Observe(took.count());
  }
  void OnWriteAheadFailed() override { write_ahead_failures_.Increment(); }
  void OnPendingLeftOut(std::size_t events) override {
    pending_left_out_.Increment(static_cast<double>(events));
  }

 private:
  prometheus::Gauge& members_;
  prometheus::Gauge& watched_;
  prometheus::Gauge& owned_;
  prometheus::Counter& acquisitions_;
  prometheus::Counter& losses_;
  prometheus::Counter& renew_failures_;
  prometheus::Histogram& takeover_;
  prometheus::Histogram& write_ahead_;
  prometheus::Counter& write_ahead_failures_;
  prometheus::Counter& pending_left_out_;
};

namespace {

// How often acknowledged services' write-ahead keys are deleted when no
// batch of theirs does it: the retry interval's default.
constexpr std::chrono::seconds kTrimInterval{1};

std::string ClusterHostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

}  // namespace

ClusterRuntime::ClusterRuntime(std::string member_id, std::unique_ptr<ClusterMetrics> metrics)
    : member_id_(std::move(member_id)), metrics_(std::move(metrics)) {}

ClusterRuntime::~ClusterRuntime() {
  CloseTakeOvers();
  // The gate reads the coordinator; the coordinator reports to the metrics.
  gate_.reset();
  write_ahead_.reset();
  coordinator_.reset();
}

Status ClusterRuntime::Start() {
  Status started = coordinator_->Start();
  if (started.ok() && loop_ != nullptr) ScheduleTrim(guard_);
  return started;
}

void ClusterRuntime::ScheduleTrim(const std::shared_ptr<TakeOverGuard>& guard) {
  loop_->RunAt(std::chrono::steady_clock::now() + kTrimInterval, [this, guard] {
    // Held throughout, as in RunTakeOvers: `this` lives while not closed.
    MutexLock lock(&guard->mutex);
    if (guard->closed) return;
    write_ahead_->Record({});
    ScheduleTrim(guard);
  });
}

void ClusterRuntime::CloseTakeOvers() {
  MutexLock lock(&guard_->mutex);  // waits for a takeover running now
  guard_->closed = true;
}

void ClusterRuntime::Leave() {
  CloseTakeOvers();
  // The sinks drained: every write-ahead they acknowledged goes, while the
  // locks are still held, so the successors do not repeat those events.
  write_ahead_->Record({}, std::numeric_limits<std::size_t>::max());
  coordinator_->Leave();
}

void ClusterRuntime::ScheduleTakeOver(std::string service, std::uint64_t epoch,
                                      std::optional<std::string> state,
                                      std::optional<std::string> pending) {
  if (watcher_ == nullptr || loop_ == nullptr) {
    // No watch to diff against (not wired): open as a first owner would.
    coordinator_->Open(service, epoch);
    return;
  }
  MutexLock lock(&guard_->mutex);
  if (guard_->closed) return;
  guard_->queue.push_back({std::move(service), epoch, std::move(state), std::move(pending)});
  // One task takes every takeover queued meanwhile: a replica starting
  // takes thousands of services at once.
  if (std::exchange(guard_->scheduled, true)) return;
  loop_->Post([this, guard = guard_] { RunTakeOvers(guard); });
}

void ClusterRuntime::RunTakeOvers(const std::shared_ptr<TakeOverGuard>& guard) {
  // Held throughout: the runtime's destructor waits for a run to end, and a
  // run that starts after it finds it closed (then `this` is gone).
  MutexLock lock(&guard->mutex);
  if (guard->closed) return;
  bool synced = false;
  std::vector<PendingTakeOver> queue = std::exchange(guard->queue, {});
  watcher_->WithEngine([&](const TransitionEngine& engine) {
    // Before its initial sync the engine does not know the services yet:
    // a diff would call every acknowledged instance gone.
    synced = engine.initial_sync_complete();
    if (!synced) return;
    const std::string datacenter = watcher_->State().datacenter;
    for (PendingTakeOver& pending : queue) {
      std::optional<ReportedService> acknowledged;
      if (pending.state) {
        auto decoded = DecodeHandoverState(*pending.state);
        if (decoded.ok()) {
          acknowledged = std::move(*decoded);
        } else {
          spdlog::warn(
              "cluster: ignoring the handover state of {} ({}); taking it over as a first owner",
              pending.service, decoded.status().message());
        }
      }
      std::optional<std::vector<Event>> unconfirmed;
      if (pending.pending) {
        auto decoded = DecodePendingEvents(*pending.pending);
        if (decoded.ok()) {
          unconfirmed = std::move(*decoded);
        } else {
          // Found but unreadable: rewritten (or deleted) as this owner's.
          unconfirmed.emplace();
          spdlog::warn(
              "cluster: ignoring the write-ahead of {} ({}); its events are not re-emitted",
              pending.service, decoded.status().message());
        }
      }
      gate_->TakeOver(engine, datacenter, pending.service, pending.epoch, std::move(acknowledged),
                      std::move(unconfirmed));
    }
  });
  if (synced) {
    guard->scheduled = false;
    return;
  }
  guard->queue = std::move(queue);  // nothing queued meanwhile: the lock is held
  // Looked at again shortly: the initial sync ends within seconds.
  loop_->RunAt(std::chrono::steady_clock::now() + std::chrono::milliseconds(100),
               [this, guard] { RunTakeOvers(guard); });
}

StatusOr<std::unique_ptr<ClusterRuntime>> ClusterRuntime::Create(
    const BridgeConfig& config, ConsulClient& reads, EventPublisher& next, HandoverLedger& ledger,
    const Clock& clock, prometheus::Registry& registry) {
  std::string member_id =
      config.cluster.member_id.empty() ? ClusterHostName() : config.cluster.member_id;
  if (std::string why = ValidateMemberId(member_id); !why.empty()) {
    return Status::InvalidArgument("cluster.member_id (default: the host name " + Quote(member_id) +
                                   ") " + why + "; set cluster.member_id");
  }
  auto runtime =
      std::make_unique<ClusterRuntime>(member_id, std::make_unique<ClusterMetrics>(registry));
  ClusterOptions options;
  options.prefix = config.cluster.prefix;
  options.member_id = member_id;
  options.session_ttl = config.cluster.session_ttl;
  options.lock_delay = config.cluster.lock_delay;
  // Own only what the watch watches.
  auto filter = std::make_shared<ServiceFilter>(config.watch.watcher.services);
  options.watched = [filter](const std::string& name, const std::vector<std::string>& tags) {
    return filter->Matches(name, tags);
  };
  options.ledger = &ledger;
  ClusterRuntime* const raw = runtime.get();
  options.take_over = [raw](const std::string& service, std::uint64_t epoch,
                            std::optional<std::string> state, std::optional<std::string> pending) {
    raw->ScheduleTakeOver(service, epoch, std::move(state), std::move(pending));
  };
  runtime->coordinator_ = std::make_unique<ClusterCoordinator>(
      std::move(options), config.consul.client, reads, clock, runtime->metrics_.get());
  // Its own connection: the write-ahead runs on the publishing thread.
  auto write_client = std::make_unique<ConsulKvClient>(config.consul.client);
  // A batch is held back at most this long when Consul is slow: then it
  // leaves without its write-ahead (availability first).
  write_client->set_timeout(std::clamp(config.cluster.session_ttl / 5,
                                       std::chrono::milliseconds(100),
                                       std::chrono::milliseconds(2000)));
  runtime->write_ahead_ =
      std::make_unique<WriteAhead>(config.cluster.prefix, std::move(write_client),
                                   *runtime->coordinator_, ledger, runtime->metrics_.get());
  runtime->gate_ = std::make_unique<EmissionGate>(next, *runtime->coordinator_, &ledger,
                                                  runtime->write_ahead_.get());
  return runtime;
}

std::string ClusterRuntime::NotReadyReason() const {
  const ClusterSnapshot snapshot = coordinator_->Snapshot();
  if (!snapshot.session_valid) return "cluster: no valid Consul session (creating or renewing it)";
  if (!snapshot.announced) return "cluster: not yet announced as member " + member_id_;
  return "";
}

}  // namespace hb

#pragma once

// The Alertmanager sink: health events as alerts on Alertmanager's
// POST /api/v2/alerts, the way Prometheus sends its own.
//
// - instance.down fires the instance's alert (alertname, service_name,
//   service_id, node, datacenter, reason, severity and the static labels);
//   service.down fires the service's. instance.up and instance.deregistered
//   resolve the instance's alert, service.up the service's (endsAt = now).
//   instance.status_changed of a firing instance updates its annotations.
// - Every post goes to every Alertmanager at once. An event is delivered
//   when at least one of them accepted it (an HA pair shares alerts by
//   gossip); the others learn it at the next resend. When none accepted it
//   the router retries it (or dead-letters it when every answer was a
//   permanent 4xx).
// - Firing alerts are posted again every resend_interval with endsAt =
//   now + expire_after, so Alertmanager neither resolves them by itself while
//   the bridge runs nor keeps them long once it stopped. Resolved alerts are
//   posted again for 15 minutes (as Prometheus does), so an Alertmanager
//   that was down when the resolve was sent learns it.
// - Silent events describe the engine's current view (at start and on
//   reload). One that shows an instance down (instance.down, or a registered
//   or status_changed event with status critical or maintenance) or a
//   service down is posted unless the sink has that alert firing already:
//   after a restart this re-sends the firing alerts, which Alertmanager
//   deduplicates. One that shows it up (instance.up, status passing,
//   service.up) resolves only an alert this sink fired. Nothing else is
//   posted for them, so a start posts nothing for healthy instances.
// - A real up or deregistration resolves the alert even when this process
//   did not fire it (a previous one did): its labels follow from the event.
//
// Deliver() runs on the router's worker thread, the resend on the sink's
// own thread; one mutex serializes their posts, so a resend never overtakes
// a resolve on the wire, and a resend round lets a waiting Deliver() in
// between two of its posts.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/router/sink.h"
#include "sinks/alertmanager/alertmanager_alerts.h"
#include "sinks/alertmanager/alertmanager_client.h"
#include "sinks/alertmanager/alertmanager_config.h"
#include "sinks/sink_registry.h"

namespace hb {

class AlertmanagerSink final : public Sink {
 public:
  // Alerts per POST, as Prometheus batches them.
  static constexpr std::size_t kMaxAlertsPerPost = 64;
  // How long a resolved alert is still posted with each resend.
  static constexpr std::chrono::minutes kResolvedRetention{15};

  // `clock` (timestamps) and `registry` (may be null: no metrics) must
  // outlive the sink. Starts the resend thread.
  static StatusOr<std::unique_ptr<AlertmanagerSink>> Create(
      std::string name, const AlertmanagerSinkSettings& settings, const Clock& clock,
      prometheus::Registry* registry = nullptr);

  struct PassKey {
    explicit PassKey() = default;
  };
  AlertmanagerSink(PassKey, std::string name, AlertmanagerSinkSettings settings,
                   std::unique_ptr<AlertmanagerClient> client, const Clock& clock,
                   prometheus::Registry* registry);
  // Stops the resend thread (aborting a resend in progress).
  ~AlertmanagerSink() override;

  AlertmanagerSink(const AlertmanagerSink&) = delete;
  AlertmanagerSink& operator=(const AlertmanagerSink&) = delete;

  std::string_view Name() const override { return name_; }
  std::size_t MaxBatch() const override { return kMaxAlertsPerPost; }
  bool WantsSilentEvents() const override { return true; }
  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override;
  // Stops the resend thread; alerts are left to expire_after, as when
  // Prometheus stops.
  bool Shutdown(std::chrono::milliseconds timeout) noexcept override;
  // Aborts the posts in progress (their events are retried).
  void Interrupt() noexcept override;

  // Posts every firing and recently resolved alert now, as the resend
  // thread does every resend_interval. Thread-safe.
  void ResendNow();
  // The alerts firing now, by key (AlertKey()). Thread-safe.
  std::map<std::string, Alert> FiringAlerts() const;

 private:
  // What one event changes: the alerts to post, and the alert to remember
  // under `key` once one Alertmanager accepted them.
  struct Update {
    std::string key;
    std::vector<Alert> posts;
    Alert remembered;
  };

  std::optional<Update> Plan(const Event& event, WallTime now) const REQUIRES(mutex_);
  std::optional<Update> PlanDown(const std::string& key, Alert alert, bool silent) const
      REQUIRES(mutex_);
  std::optional<Update> PlanResolve(const std::string& key, const Event& event, WallTime now) const
      REQUIRES(mutex_);
  std::optional<Update> PlanStatusChange(const std::string& key, const Event& event) const
      REQUIRES(mutex_);
  // A silent registered or status_changed event: the instance's status now.
  std::optional<Update> PlanSilentStatus(const std::string& key, const Event& event,
                                         WallTime now) const REQUIRES(mutex_);
  // Posts the alerts of `updates` to every Alertmanager; ok when one accepted.
  DeliveryResult Post(std::span<const Update* const> updates, WallTime now) REQUIRES(mutex_);
  // Posts the book again, in posts of kMaxAlertsPerPost, letting a waiting
  // Deliver() in between two posts (mutex_ is let go meanwhile).
  void Resend() REQUIRES(mutex_);
  // Counts each Alertmanager's answer to one post (but those `skipped`).
  void CountPosts(const std::vector<DeliveryResult>& answers, const std::vector<bool>& skipped);
  // book_[key] = alert, keeping the firing count.
  void Remember(const std::string& key, Alert alert) REQUIRES(mutex_);
  void ResendLoop() EXCLUDES(mutex_);
  void StopResending() EXCLUDES(mutex_);
  // Interrupt() is the client's one call that is safe without mutex_: it
  // cuts short the post of whoever holds it.
  void InterruptClient() NO_THREAD_SAFETY_ANALYSIS { client_->Interrupt(); }

  const std::string name_;
  const AlertmanagerSinkSettings settings_;
  const Clock& clock_;

  mutable Mutex mutex_;
  // One post at a time: a resend never overtakes a resolve.
  const std::unique_ptr<AlertmanagerClient> client_
      PT_GUARDED_BY(mutex_);  // InterruptClient() aside
  // Firing alerts and those resolved in the last kResolvedRetention.
  std::map<std::string, Alert> book_ GUARDED_BY(mutex_);
  std::size_t firing_ GUARDED_BY(mutex_) = 0;  // the firing alerts in book_
  // Metrics (none without a registry). They stay when the sink goes: the
  // sink that replaces it on a reload shares them.
  struct PostCounters {
    prometheus::Counter* ok = nullptr;
    prometheus::Counter* failed = nullptr;
  };
  std::vector<PostCounters> post_counters_;  // one per Alertmanager
  prometheus::Gauge* firing_gauge_ = nullptr;
  // Deliver() calls waiting for mutex_: a resend round steps aside for them.
  std::atomic<int> deliveries_waiting_{0};
  // Stop, and a Deliver() finished (for a resend that stepped aside).
  CondVar wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread resender_;
};

StatusOr<SinkPtr> CreateAlertmanagerSink(const SinkConfig& config, const SinkContext& context);

}  // namespace hb

#include "bridge/telemetry/bridge_metrics.h"

#include <type_traits>

#include "bridge/common/version.h"

namespace hb {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Blocking queries are held up to wait (5m by default, 10m at most), so the
// Consul buckets reach that far; immediate requests land in the low ones.
const Histogram::BucketBoundaries& ConsulBuckets() {
  static const Histogram::BucketBoundaries buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                   2.5,   5,    10,    30,   60,  120,  300, 600};
  return buckets;
}
// Deliveries: milliseconds when healthy, up to hours while a sink is down
// and its events wait in retries.
const Histogram::BucketBoundaries& DeliveryBuckets() {
  static const Histogram::BucketBoundaries buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   5,
                                                   10,    30,     60,    300,  1800,  7200};
  return buckets;
}

double Seconds(std::chrono::duration<double> duration) { return duration.count(); }

}  // namespace

BridgeMetrics::BridgeMetrics(prometheus::Registry& registry, const Clock& clock)
    : clock_(clock),
      consul_requests_(BuildCounter()
                           .Name("health_bridge_consul_requests_total")
                           .Help("Consul HTTP API requests by endpoint and outcome (ok, "
                                 "http_4xx, http_5xx, timeout, error, malformed).")
                           .Register(registry)),
      consul_latency_(BuildHistogram()
                          .Name("health_bridge_consul_request_duration_seconds")
                          .Help("Consul request duration; for blocking queries (blocking=\"true\") "
                                "it includes the time Consul held the request.")
                          .Register(registry)),
      watch_errors_(BuildCounter()
                        .Name("health_bridge_watch_errors_total")
                        .Help("Consul requests of the watch that failed, by endpoint and outcome; "
                              "each is retried with backoff.")
                        .Register(registry)),
      consul_refusals_(
          BuildCounter()
              .Name("health_bridge_consul_refusals_total")
              .Help("Connections Consul refused, by reason: too_many_connections (HTTP 429: "
                    "this IP holds more than Consul's limits.http_max_conns_per_client) or "
                    "connection_reset. Each is backed off and retried.")
              .Register(registry)),
      deliveries_(BuildCounter()
                      .Name("health_bridge_sink_deliveries_total")
                      .Help("Delivery attempts by sink and outcome: delivered, retried (a "
                            "transient failure) or dead_lettered.")
                      .Register(registry)),
      queue_depth_(BuildGauge()
                       .Name("health_bridge_sink_queue_depth")
                       .Help("Events waiting, by sink: queued, retrying, being delivered "
                             "and in the spool only.")
                       .Register(registry)),
      delivery_latency_(BuildHistogram()
                            .Name("health_bridge_sink_delivery_latency_seconds")
                            .Help("From the event's creation to the sink's acknowledgement.")
                            .Register(registry)),
      end_to_end_latency_(BuildHistogram()
                              .Name("health_bridge_event_end_to_end_latency_seconds")
                              .Help("From the Consul answer that showed the change to the sink's "
                                    "acknowledgement.")
                              .Register(registry)),
      spool_bytes_(BuildGauge()
                       .Name("health_bridge_spool_bytes")
                       .Help("Size of each sink's on-disk spool (state.dir), acknowledged "
                             "segments excluded.")
                       .Register(registry)),
      spool_full_(BuildCounter()
                      .Name("health_bridge_spool_full_total")
                      .Help("Events dead-lettered because their sink's spool had reached "
                            "max_bytes.")
                      .Register(registry)),
      spool_write_errors_(BuildCounter()
                              .Name("health_bridge_spool_write_errors_total")
                              .Help("Spool writes the disk refused (full, I/O error); the events "
                                    "stay in memory and the write is retried.")
                              .Register(registry)),
      spool_dropped_bytes_(BuildCounter()
                               .Name("health_bridge_spool_dropped_bytes_total")
                               .Help("Bytes of torn or corrupt spool records cut away at start.")
                               .Register(registry)),
      state_saves_(BuildCounter()
                       .Name("health_bridge_state_saves_total")
                       .Help("Saves of the engine's state to state.dir, by outcome (ok, error).")
                       .Register(registry)),
      state_dropped_(BuildCounter()
                         .Name("health_bridge_state_dropped_total")
                         .Help("Saved state files found unreadable at start; the bridge started "
                               "without them (no reconciliation).")
                         .Register(registry)
                         .Add({})),
      config_reloads_(BuildCounter()
                          .Name("health_bridge_config_reloads_total")
                          .Help("SIGHUP reloads by result: ok, or failed (the file was empty or "
                                "invalid and the running configuration stayed).")
                          .Register(registry)),
      consul_reachable_(BuildGauge()
                            .Name("health_bridge_consul_reachable")
                            .Help("0 while every Consul request fails (since the first failure "
                                  "of the streak), else 1.")
                            .Register(registry)
                            .Add({})),
      ready_(BuildGauge()
                 .Name("health_bridge_ready")
                 .Help("1 when /readyz answers 200: Consul reachable, the first sync done and the "
                       "watch loop turning.")
                 .Register(registry)
                 .Add({})),
      initial_sync_done_(BuildGauge()
                             .Name("health_bridge_initial_sync_done")
                             .Help("1 once every watched service has been read once.")
                             .Register(registry)
                             .Add({})),
      watched_services_(BuildGauge()
                            .Name("health_bridge_watched_services")
                            .Help("Services the bridge watches (after the include/exclude "
                                  "filters).")
                            .Register(registry)
                            .Add({})),
      last_success_(BuildGauge()
                        .Name("health_bridge_last_successful_sync_timestamp_seconds")
                        .Help("Unix time of the last successful Consul answer.")
                        .Register(registry)
                        .Add({})),
      loop_lag_(BuildGauge()
                    .Name("health_bridge_watch_loop_lag_seconds")
                    .Help("Seconds since the watch loop last turned; about 1 when it is "
                          "healthy, growing while it is stuck.")
                    .Register(registry)
                    .Add({})),
      source_up_(BuildGauge()
                     .Name("health_bridge_source_up")
                     .Help("1 while the source (a datacenter, a peer's imported services, a "
                           "namespace or partition; label source) answers, 0 while every "
                           "request to it fails (no path to the datacenter, an inactive "
                           "peering): its instances keep their last known state meanwhile.")
                     .Register(registry)),
      source_services_(BuildGauge()
                           .Name("health_bridge_source_watched_services")
                           .Help("Services watched in the source (label source).")
                           .Register(registry)),
      sources_dropped_(BuildCounter()
                           .Name("health_bridge_sources_dropped_total")
                           .Help("Sources found at run time (watch.sources with all or *) that "
                                 "were dropped after watch.source_grace off their list; their "
                                 "state left silently.")
                           .Register(registry)
                           .Add({})),
      sources_refused_(BuildGauge()
                           .Name("health_bridge_sources_refused")
                           .Help("Sources found at run time that are not watched now: "
                                 "watch.max_sources sources hold the connection budget.")
                           .Register(registry)
                           .Add({})) {
  BuildGauge()
      .Name("health_bridge_build_info")
      .Help("The running version; always 1.")
      .Register(registry)
      .Add({{"version", kVersion}, {"revision", kGitRevision}})
      .Set(1);
}

void BridgeMetrics::OnRefused(std::string_view reason) {
  consul_refusals_.Add({{"reason", std::string(reason)}}).Increment();
}

void BridgeMetrics::OnRequestDone(std::string_view endpoint, std::string_view outcome,
                                  std::chrono::duration<double> latency, bool blocking) {
  const std::string endpoint_label(endpoint);
  const std::string outcome_label(outcome);
  consul_requests_.Add({{"endpoint", endpoint_label}, {"outcome", outcome_label}}).Increment();
  consul_latency_
      .Add({{"endpoint", endpoint_label}, {"blocking", blocking ? "true" : "false"}},
           ConsulBuckets())
      .Observe(Seconds(latency));
  if (outcome != "ok") {
    watch_errors_.Add({{"endpoint", endpoint_label}, {"outcome", outcome_label}}).Increment();
  }
}

void BridgeMetrics::OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) {
  const std::string sink_label(sink);
  deliveries_.Add({{"sink", sink_label}, {"outcome", "delivered"}}).Increment();
  delivery_latency_.Add({{"sink", sink_label}}, DeliveryBuckets())
      .Observe(std::max(0.0, Seconds(clock_.WallNow() - event.time)));
  if (event.observed_at != SteadyTime{}) {
    end_to_end_latency_.Add({{"sink", sink_label}}, DeliveryBuckets())
        .Observe(std::max(0.0, Seconds(acked_at - event.observed_at)));
  }
}

void BridgeMetrics::OnRetry(std::string_view sink, const Event&, std::string_view) {
  deliveries_.Add({{"sink", std::string(sink)}, {"outcome", "retried"}}).Increment();
}

void BridgeMetrics::OnDeadLettered(std::string_view sink, const Event&, std::string_view) {
  deliveries_.Add({{"sink", std::string(sink)}, {"outcome", "dead_lettered"}}).Increment();
}

void BridgeMetrics::OnQueueDepth(std::string_view sink, std::size_t depth) {
  queue_depth_.Add({{"sink", std::string(sink)}}).Set(static_cast<double>(depth));
}

void BridgeMetrics::OnSpoolBytes(std::string_view sink, std::uint64_t bytes) {
  spool_bytes_.Add({{"sink", std::string(sink)}}).Set(static_cast<double>(bytes));
}

void BridgeMetrics::OnSpoolFull(std::string_view sink) {
  spool_full_.Add({{"sink", std::string(sink)}}).Increment();
}

void BridgeMetrics::OnSpoolWriteError(std::string_view sink) {
  spool_write_errors_.Add({{"sink", std::string(sink)}}).Increment();
}

void BridgeMetrics::OnSpoolDropped(std::string_view sink, std::uint64_t bytes) {
  spool_dropped_bytes_.Add({{"sink", std::string(sink)}}).Increment(static_cast<double>(bytes));
}

void BridgeMetrics::OnStateSaved(bool ok) {
  state_saves_.Add({{"outcome", ok ? "ok" : "error"}}).Increment();
}

void BridgeMetrics::OnStateDropped() { state_dropped_.Increment(); }

void BridgeMetrics::OnConfigReload(bool ok) {
  config_reloads_.Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

namespace {

template <typename T>
void RemoveIfPresent(prometheus::Family<T>& family, const prometheus::Labels& labels) {
  if (!family.Has(labels)) return;
  if constexpr (std::is_same_v<T, Histogram>) {
    family.Remove(&family.Add(labels, Histogram::BucketBoundaries{}));
  } else {
    family.Remove(&family.Add(labels));
  }
}

}  // namespace

void BridgeMetrics::ForgetSink(std::string_view name) {
  const prometheus::Labels sink{{"sink", std::string(name)}};
  for (const char* outcome : {"delivered", "retried", "dead_lettered"}) {
    prometheus::Labels labels = sink;
    labels.emplace("outcome", outcome);
    RemoveIfPresent(deliveries_, labels);
  }
  RemoveIfPresent(queue_depth_, sink);
  RemoveIfPresent(delivery_latency_, sink);
  RemoveIfPresent(end_to_end_latency_, sink);
  RemoveIfPresent(spool_bytes_, sink);
  RemoveIfPresent(spool_full_, sink);
  RemoveIfPresent(spool_write_errors_, sink);
  RemoveIfPresent(spool_dropped_bytes_, sink);
}

void BridgeMetrics::SetWatchState(const WatchState& state) {
  consul_reachable_.Set(state.unreachable_since ? 0 : 1);
  ready_.Set(state.ready ? 1 : 0);
  initial_sync_done_.Set(state.initial_sync_done ? 1 : 0);
  watched_services_.Set(static_cast<double>(state.watched_services));
  if (state.last_success) {
    last_success_.Set(
        std::chrono::duration<double>(state.last_success->time_since_epoch()).count());
  }
}

void BridgeMetrics::SetWatchLoopLag(std::chrono::milliseconds since_last_turn, bool stalled) {
  loop_lag_.Set(std::chrono::duration<double>(since_last_turn).count());
  if (stalled) ready_.Set(0);
}

void BridgeMetrics::SetSourceStates(const std::vector<WatchState>& states) {
  std::set<std::string, std::less<>> shown;
  for (const WatchState& state : states) {
    if (!state.source.empty()) shown.insert(state.source);
  }
  MutexLock lock(&sources_mutex_);
  for (const std::string& gone : sources_shown_) {
    if (shown.contains(gone)) continue;
    source_up_.Remove(&source_up_.Add({{"source", gone}}));
    source_services_.Remove(&source_services_.Add({{"source", gone}}));
  }
  sources_shown_ = std::move(shown);
  for (const WatchState& state : states) {
    if (state.source.empty()) continue;
    source_up_.Add({{"source", state.source}}).Set(state.unreachable_since ? 0 : 1);
    source_services_.Add({{"source", state.source}})
        .Set(static_cast<double>(state.watched_services));
  }
}

void BridgeMetrics::SetSourceChurn(std::uint64_t dropped_total, std::size_t refused) {
  MutexLock lock(&sources_mutex_);
  const double counted = sources_dropped_.Value();
  if (static_cast<double>(dropped_total) > counted) {
    sources_dropped_.Increment(static_cast<double>(dropped_total) - counted);
  }
  sources_refused_.Set(static_cast<double>(refused));
}

}  // namespace hb

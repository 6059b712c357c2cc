#pragma once

// The bridge's own metrics: Consul requests, the watch, every sink's
// deliveries, build info. It observes the consul client and the router
// through their observer interfaces, so neither depends on Prometheus.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <set>
#include <string>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/consul/consul_client.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/watch/watcher.h"

namespace hb {

// Thread-safe: the consul loop, every sink worker and the HTTP server call
// it concurrently (prometheus-cpp's metrics are atomic).
class BridgeMetrics final : public RequestObserver, public DeliveryObserver {
 public:
  // `registry` and `clock` must outlive this.
  BridgeMetrics(prometheus::Registry& registry, const Clock& clock);

  void OnRequestDone(std::string_view endpoint, std::string_view outcome,
                     std::chrono::duration<double> latency, bool blocking) override;
  void OnRefused(std::string_view reason) override;

  void OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) override;
  void OnRetry(std::string_view sink, const Event& event, std::string_view error) override;
  void OnDeadLettered(std::string_view sink, const Event& event, std::string_view reason) override;
  void OnQueueDepth(std::string_view sink, std::size_t depth) override;
  void OnSpoolBytes(std::string_view sink, std::uint64_t bytes) override;
  void OnSpoolFull(std::string_view sink) override;
  void OnSpoolWriteError(std::string_view sink) override;
  void OnSpoolDropped(std::string_view sink, std::uint64_t bytes) override;

  // The saved state (state.dir): a save that worked or failed, and a file
  // found unreadable at start (the bridge started without it).
  void OnStateSaved(bool ok);
  void OnStateDropped();
  // A SIGHUP reload that was applied, or refused (the running config stays).
  void OnConfigReload(bool ok);

  // The sink `name` was removed (or renamed): its series go with it.
  void ForgetSink(std::string_view name);

  // The watch's health, copied in before each scrape.
  void SetWatchState(const WatchState& state);
  // Time since the watch loop last turned; `stalled` (past
  // watch.stall_timeout) also makes health_bridge_ready 0, as /readyz
  // fails. Call after SetWatchState().
  void SetWatchLoopLag(std::chrono::milliseconds since_last_turn, bool stalled);
  // Each source's own state (Watcher::SourceStates()), as
  // health_bridge_source_up and health_bridge_source_watched_services by
  // source key; a source not known yet (its datacenter not read) is skipped.
  // A source no longer in `states` (dropped at run time) loses its series.
  void SetSourceStates(const std::vector<WatchState>& states);
  // Sources found at run time (watch.sources templates): dropped since the
  // start, and refused now (past watch.max_sources).
  void SetSourceChurn(std::uint64_t dropped_total, std::size_t refused);

 private:
  const Clock& clock_;
  prometheus::Family<prometheus::Counter>& consul_requests_;
  prometheus::Family<prometheus::Histogram>& consul_latency_;
  prometheus::Family<prometheus::Counter>& watch_errors_;
  prometheus::Family<prometheus::Counter>& consul_refusals_;
  prometheus::Family<prometheus::Counter>& deliveries_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Histogram>& delivery_latency_;
  prometheus::Family<prometheus::Histogram>& end_to_end_latency_;
  prometheus::Family<prometheus::Gauge>& spool_bytes_;
  prometheus::Family<prometheus::Counter>& spool_full_;
  prometheus::Family<prometheus::Counter>& spool_write_errors_;
  prometheus::Family<prometheus::Counter>& spool_dropped_bytes_;
  prometheus::Family<prometheus::Counter>& state_saves_;
  prometheus::Counter& state_dropped_;
  prometheus::Family<prometheus::Counter>& config_reloads_;
  prometheus::Gauge& consul_reachable_;
  prometheus::Gauge& ready_;
  prometheus::Gauge& initial_sync_done_;
  prometheus::Gauge& watched_services_;
  prometheus::Gauge& last_success_;
  prometheus::Gauge& loop_lag_;
  prometheus::Family<prometheus::Gauge>& source_up_;
  prometheus::Family<prometheus::Gauge>& source_services_;
  prometheus::Counter& sources_dropped_;
  prometheus::Gauge& sources_refused_;
  // Scrapes may run at once: the series shown last, under a lock.
  Mutex sources_mutex_;
  std::set<std::string, std::less<>> sources_shown_ GUARDED_BY(sources_mutex_);
};

}  // namespace hb

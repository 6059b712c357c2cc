#pragma once

// The metrics sink: Prometheus series kept from the same events every other
// sink sees, with prometheus/consul_exporter's label names (service_name,
// service_id, node, status) so existing dashboards and alerts join.
// It wants silent events (the initial sync and the engine's view, see
// Sink::WantsSilentEvents()): the gauges must describe every instance from
// the first scrape, after a restart or a reload too, not only those that
// changed since. An instance that left the catalog is exported at 0 with
// every status series 0 for deregistered_series_ttl, then removed. Label
// values are MetricLabelValue() of Consul's text.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <deque>
#include <map>
#include <string>

#include "bridge/common/clock.h"
#include "bridge/router/sink.h"
#include "sinks/metrics/metrics_config.h"
#include "sinks/sink_registry.h"

namespace hb {

// A label value from Consul text, safe in the text exposition format:
// prometheus-cpp escapes only '\\', '"' and LF, so control bytes (CR, NUL,
// ESC, DEL, ...), bytes that are not UTF-8, and '%' itself are
// percent-encoded (upper-case hex). Text without those, nearly every real
// name, is unchanged; distinct texts stay distinct labels, so two
// instances never share a series.
std::string MetricLabelValue(std::string_view text);

class MetricsSink final : public Sink {
 public:
  // `registry` and `clock` must outlive the sink.
  MetricsSink(std::string name, const MetricsSinkSettings& settings, prometheus::Registry& registry,
              const Clock& clock);
  // Removes every series it added (if Shutdown() did not already).
  ~MetricsSink() override;

  MetricsSink(const MetricsSink&) = delete;
  MetricsSink& operator=(const MetricsSink&) = delete;

  std::string_view Name() const override { return name_; }
  std::size_t MaxBatch() const override { return 4096; }
  bool WantsSilentEvents() const override { return true; }
  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override;
  // Removes every series it added: a removed sink's series go with it, and a
  // renamed or rebuilt one starts from the view it is sent, not from these.
  // Done here rather than only in the destructor, which may run later on
  // another thread, after a successor registered the same series.
  bool Shutdown(std::chrono::milliseconds) noexcept override;

 private:
  static constexpr std::size_t kStatuses = 4;  // passing, warning, critical, maintenance

  struct InstanceSeries {
    std::string service;  // its service's key (ServiceFor)
    prometheus::Gauge* up = nullptr;
    std::array<prometheus::Gauge*, kStatuses> status{};
    bool is_up = false;
    bool deregistered = false;
    std::uint64_t generation = 0;  // tells a re-registration from its predecessor
  };
  struct ServiceSeries {
    prometheus::Gauge* up = nullptr;
    prometheus::Gauge* total = nullptr;
    int instances_up = 0;
    int instances_total = 0;
  };
  struct Expiry {
    SteadyTime at;
    std::string key;
    std::uint64_t generation = 0;
  };

  void Apply(const Event& event);
  // The series of the instance `key` (InstanceKey of `event`), created if new.
  InstanceSeries& SeriesFor(const std::string& key, const Event& event);
  // The series of a service by its key (its name, with the source's key
  // before it when the bridge watches several sources), made with `labels`
  // when new.
  ServiceSeries& ServiceFor(const std::string& key, const prometheus::Labels& labels);
  ServiceSeries& ServiceFor(const std::string& key);
  void SetStatus(InstanceSeries& series, HealthStatus status);
  void SetUp(InstanceSeries& series, bool up);
  // Keeps the series at 0 (no status) for `ttl`, then removes it.
  void Deregister(const std::string& key, InstanceSeries& series, const Event& event,
                  std::chrono::milliseconds ttl);
  // A silent instance.deregistered of the engine's view: an instance that
  // left at event.time, whose series the other sinks still keep.
  void RestateDeparture(const std::string& key, const Event& event);
  void RemoveInstance(InstanceSeries& series);
  void RemoveAllSeries() noexcept;
  void ExpireDeregistered();

  const std::string name_;
  const MetricsSinkSettings settings_;
  const Clock& clock_;
  prometheus::Family<prometheus::Gauge>& instance_up_;
  prometheus::Family<prometheus::Gauge>& instance_status_;
  prometheus::Family<prometheus::Gauge>& service_up_;
  prometheus::Family<prometheus::Gauge>& service_total_;
  prometheus::Family<prometheus::Counter>& deregistrations_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& transitions_;
  // Worker thread only (prometheus-cpp's own objects are thread-safe for
  // the scrapes that read them).
  std::map<std::string, InstanceSeries, std::less<>> instances_;  // "<dc>/<node>/<id>"
  std::map<std::string, ServiceSeries, std::less<>> services_;
  std::deque<Expiry> expiries_;  // in `at` order
  std::uint64_t next_generation_ = 0;
};

StatusOr<SinkPtr> CreateMetricsSink(const SinkConfig& config, const SinkContext& context);

}  // namespace hb

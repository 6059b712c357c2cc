#include "sinks/metrics/metrics_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

namespace hb {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;

constexpr std::array<HealthStatus, 4> kAllStatuses{HealthStatus::kPassing, HealthStatus::kWarning,
                                                   HealthStatus::kCritical,
                                                   HealthStatus::kMaintenance};

// Events of a bridge with several sources carry them; one source's series
// keep the labels they always had, so dashboards and rules keep working.
bool NamesSource(const Event& event) {
  return event.scope.named_in_subject || !event.scope.IsDefault();
}

std::string InstanceKey(const Event& event) {
  if (NamesSource(event)) {
    return SourceKey(event.datacenter, event.scope) + "\n" + event.node + "/" + event.instance_id;
  }
  return event.datacenter + "/" + event.node + "/" + event.instance_id;
}

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlong form, no
// surrogate, nothing past U+10FFFF) at the start of `text`; 0 when none.
std::size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char min = 0x80;
  unsigned char max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min = 0xA0;
    if (lead == 0xED) max = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min = 0x90;
    if (lead == 0xF4) max = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < min || byte(1) > max) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// The service's series key: its name, qualified by the source when the
// bridge watches several.
std::string ServiceKeyOf(const Event& event) {
  return NamesSource(event) ? SourceKey(event.datacenter, event.scope) + "\n" + event.service
                            : event.service;
}

// `labels` plus the source's: datacenter always, peer, namespace and
// partition where they apply (the labels consul_exporter's series get from
// a scrape job per datacenter).
// Every value passes through MetricLabelValue(): service names, IDs and
// nodes are Consul's free text.
prometheus::Labels WithSource(prometheus::Labels labels, const Event& event) {
  if (NamesSource(event)) {
    labels.emplace("datacenter", event.datacenter);
    if (!event.scope.peer.empty()) labels.emplace("peer", event.scope.peer);
    if (!event.scope.ns.empty()) labels.emplace("namespace", event.scope.ns);
    if (!event.scope.partition.empty()) labels.emplace("partition", event.scope.partition);
  }
  for (auto& [name, value] : labels) value = MetricLabelValue(value);
  return labels;
}

}  // namespace

std::string MetricLabelValue(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text.front());
    const std::size_t length = Utf8SequenceLength(text);
    if (length == 0 || c < 0x20 || c == 0x7F || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      text.remove_prefix(1);
      continue;
    }
    out.append(text.substr(0, length));
    text.remove_prefix(length);
  }
  return out;
}

MetricsSink::MetricsSink(std::string name, const MetricsSinkSettings& settings,
                         prometheus::Registry& registry, const Clock& clock)
    : name_(std::move(name)),
      settings_(settings),
      clock_(clock),
      instance_up_(BuildGauge()
                       .Name("health_bridge_instance_up")
                       .Help("Whether the instance is up (its aggregated health is an up "
                             "status): 1 up, 0 down. Kept as 0 for a while after it is "
                             "deregistered.")
                       .Register(registry)),
      instance_status_(BuildGauge()
                           .Name("health_bridge_instance_status")
                           .Help("Aggregated health of the instance: the series of its current "
                                 "status is 1, the others 0; all four are 0 once it left the "
                                 "catalog, until its series are removed.")
                           .Register(registry)),
      service_up_(BuildGauge()
                      .Name("health_bridge_service_instances_up")
                      .Help("Instances of the service that are up.")
                      .Register(registry)),
      service_total_(BuildGauge()
                         .Name("health_bridge_service_instances")
                         .Help("Registered instances of the service.")
                         .Register(registry)),
      deregistrations_(BuildCounter()
                           .Name("health_bridge_deregistrations_total")
                           .Help("Instances that left the catalog; reason is \"reaped\" when "
                                 "it was critical (Consul reaped it or its owner gave up on "
                                 "it), else \"graceful\".")
                           .Register(registry)),
      events_(BuildCounter()
                  .Name("health_bridge_events_total")
                  .Help("Health events by type, as seen by this sink (not the silent "
                        "ones that restate the current state).")
                  .Register(registry)),
      transitions_(BuildCounter()
                       .Name("health_bridge_instance_transitions_total")
                       .Help("Instance up and down transitions by service.")
                       .Register(registry)) {}

MetricsSink::~MetricsSink() { RemoveAllSeries(); }

bool MetricsSink::Shutdown(std::chrono::milliseconds) noexcept {
  RemoveAllSeries();
  return true;
}

namespace {

// Removes `ours` from `family` in the order the family keeps its series.
// prometheus-cpp 1.0's Family::Remove() searches its series one by one, so
// removing 100,000 instances' series in any other order took minutes (and
// SIGTERM past its deadline); in the family's own order each is found first.
void RemoveInFamilyOrder(prometheus::Family<prometheus::Gauge>& family,
                         const std::unordered_set<const prometheus::Gauge*>& ours) {
  if (ours.empty()) return;
  for (const auto& collected : family.Collect()) {
    for (const auto& metric : collected.metric) {
      prometheus::Labels labels;
      for (const auto& pair : metric.label) labels.emplace(pair.name, pair.value);
      if (!family.Has(labels)) continue;
      prometheus::Gauge& gauge = family.Add(labels);  // the existing series
      if (ours.contains(&gauge)) family.Remove(&gauge);
    }
  }
}

}  // namespace

void MetricsSink::RemoveAllSeries() noexcept {
  try {
    std::unordered_set<const prometheus::Gauge*> up, status, service_up, service_total;
    for (const auto& [key, series] : instances_) {
      up.insert(series.up);
      for (const prometheus::Gauge* gauge : series.status) status.insert(gauge);
    }
    for (const auto& [service, series] : services_) {
      service_up.insert(series.up);
      service_total.insert(series.total);
    }
    RemoveInFamilyOrder(instance_up_, up);
    RemoveInFamilyOrder(instance_status_, status);
    RemoveInFamilyOrder(service_up_, service_up);
    RemoveInFamilyOrder(service_total_, service_total);
  } catch (const std::exception& error) {
    spdlog::error("metrics sink {}: removing its series failed: {}", name_, error.what());
  }
  instances_.clear();
  services_.clear();
  expiries_.clear();
}

void MetricsSink::Deliver(std::span<const EventPtr> events,
                          std::span<DeliveryResult> results) noexcept {
  for (std::size_t i = 0; i < events.size(); ++i) {
    try {
      Apply(*events[i]);
      results[i] = DeliveryResult::Ok();
    } catch (const std::exception& error) {
      // Only allocation fails here; applying again later is harmless.
      results[i] = DeliveryResult::Retry(error.what());
    }
  }
  ExpireDeregistered();
}

void MetricsSink::Apply(const Event& event) {
  // The initial sync's silent events describe the state, not changes: they
  // set the gauges but are not counted as events.
  if (!event.silent) events_.Add({{"type", std::string(ToString(event.type))}}).Increment();
  if (!event.IsInstanceEvent()) return;

  const std::string key = InstanceKey(event);
  if (event.silent && event.type == EventType::kInstanceDeregistered) {
    RestateDeparture(key, event);
    return;
  }
  InstanceSeries& series = SeriesFor(key, event);
  if (event.status) SetStatus(series, *event.status);
  switch (event.type) {
    case EventType::kInstanceUp:
      SetUp(series, true);
      if (!event.silent) {
        transitions_.Add(WithSource({{"service_name", event.service}, {"direction", "up"}}, event))
            .Increment();
      }
      break;
    case EventType::kInstanceDown:
      SetUp(series, false);
      if (!event.silent) {
        transitions_
            .Add(WithSource({{"service_name", event.service}, {"direction", "down"}}, event))
            .Increment();
      }
      break;
    case EventType::kInstanceDeregistered:
      Deregister(key, series, event, settings_.deregistered_series_ttl);
      break;
    default:
      break;
  }
}

MetricsSink::InstanceSeries& MetricsSink::SeriesFor(const std::string& key, const Event& event) {
  auto it = instances_.find(key);
  if (it != instances_.end() && !it->second.deregistered) return it->second;
  if (it != instances_.end()) {
    // Registered again before its old series expired: start afresh.
    RemoveInstance(it->second);
    instances_.erase(it);
  }
  const prometheus::Labels labels = WithSource(
      {{"service_name", event.service}, {"service_id", event.instance_id}, {"node", event.node}},
      event);
  InstanceSeries series;
  series.service = ServiceKeyOf(event);
  series.generation = ++next_generation_;
  series.up = &instance_up_.Add(labels);
  for (std::size_t i = 0; i < kStatuses; ++i) {
    prometheus::Labels with_status = labels;
    with_status.emplace("status", std::string(ToString(kAllStatuses[i])));
    series.status[i] = &instance_status_.Add(with_status);
  }
  ServiceSeries& service =
      ServiceFor(series.service, WithSource({{"service_name", event.service}}, event));
  service.total->Set(++service.instances_total);
  return instances_.emplace(key, std::move(series)).first->second;
}

MetricsSink::ServiceSeries& MetricsSink::ServiceFor(const std::string& key,
                                                    const prometheus::Labels& labels) {
  auto it = services_.find(key);
  if (it != services_.end()) return it->second;
  ServiceSeries series;
  series.up = &service_up_.Add(labels);
  series.total = &service_total_.Add(labels);
  return services_.emplace(key, series).first->second;
}

MetricsSink::ServiceSeries& MetricsSink::ServiceFor(const std::string& key) {
  // Made with its labels when its first instance's series were.
  return ServiceFor(key, {{"service_name", MetricLabelValue(key)}});
}

void MetricsSink::SetStatus(InstanceSeries& series, HealthStatus status) {
  for (std::size_t i = 0; i < kStatuses; ++i) {
    series.status[i]->Set(kAllStatuses[i] == status ? 1 : 0);
  }
}

void MetricsSink::SetUp(InstanceSeries& series, bool up) {
  series.up->Set(up ? 1 : 0);
  if (series.is_up == up) return;
  series.is_up = up;
  ServiceSeries& service = ServiceFor(series.service);
  service.instances_up += up ? 1 : -1;
  service.up->Set(service.instances_up);
}

void MetricsSink::RestateDeparture(const std::string& key, const Event& event) {
  auto it = instances_.find(key);
  if (it != instances_.end() && it->second.deregistered) return;  // already counting down
  // The series stays for the rest of its TTL, counted from the departure.
  const auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.WallNow() - event.time);
  const auto left =
      settings_.deregistered_series_ttl - std::max(since, std::chrono::milliseconds(0));
  if (left <= std::chrono::milliseconds(0)) {
    if (it != instances_.end()) {
      InstanceSeries& series = it->second;
      SetUp(series, false);
      ServiceSeries& service = ServiceFor(series.service);
      service.total->Set(--service.instances_total);
      RemoveInstance(series);
      instances_.erase(it);
    }
    return;
  }
  Deregister(key, SeriesFor(key, event), event, left);
}

void MetricsSink::Deregister(const std::string& key, InstanceSeries& series, const Event& event,
                             std::chrono::milliseconds ttl) {
  SetUp(series, false);
  // It has no status any more: no status series claims one.
  for (prometheus::Gauge* status : series.status) status->Set(0);
  series.deregistered = true;
  ServiceSeries& service = ServiceFor(series.service);
  service.total->Set(--service.instances_total);
  // The status it had when it left; events spooled by older versions carry
  // it as status.
  const std::optional<HealthStatus> last =
      event.previous_status ? event.previous_status : event.status;
  const bool reaped = last == HealthStatus::kCritical;
  if (!event.silent) {
    deregistrations_
        .Add(WithSource(
            {{"service_name", event.service}, {"reason", reaped ? "reaped" : "graceful"}}, event))
        .Increment();
  }
  // Exported as 0 until then, so a scrape sees the instance go down rather
  // than its series merely vanish.
  // Expiries are kept in time order: a restated departure (shorter TTL)
  // goes before the later ones.
  const Expiry expiry{clock_.Now() + ttl, key, series.generation};
  expiries_.insert(std::upper_bound(expiries_.begin(), expiries_.end(), expiry,
                                    [](const Expiry& a, const Expiry& b) { return a.at < b.at; }),
                   expiry);
}

void MetricsSink::RemoveInstance(InstanceSeries& series) {
  instance_up_.Remove(series.up);
  for (prometheus::Gauge* status : series.status) instance_status_.Remove(status);
}

void MetricsSink::ExpireDeregistered() {
  const SteadyTime now = clock_.Now();
  while (!expiries_.empty() && expiries_.front().at <= now) {
    auto it = instances_.find(expiries_.front().key);
    // A re-registered instance may have replaced the series this was for.
    if (it != instances_.end() && it->second.generation == expiries_.front().generation) {
      RemoveInstance(it->second);
      instances_.erase(it);
    }
    expiries_.pop_front();
  }
}

StatusOr<SinkPtr> CreateMetricsSink(const SinkConfig& config, const SinkContext& context) {
  const auto* settings = dynamic_cast<const MetricsSinkSettings*>(config.settings.get());
  if (settings == nullptr) return Status::Internal("sink " + config.name + ": not a metrics sink");
  if (context.registry == nullptr || context.clock == nullptr) {
    return Status::Internal("sink " + config.name + ": no metrics registry");
  }
  return SinkPtr(
      std::make_unique<MetricsSink>(config.name, *settings, *context.registry, *context.clock));
}

}  // namespace hb

#include "bridge/app/component_options.h"

namespace hb {

ConsulClientOptions ClientOptionsFor(const ConsulConfig& consul) {
  ConsulClientOptions options;
  options.address = consul.address;
  options.token = consul.effective_token;
  options.token_file = consul.token_file;
  options.datacenter = consul.datacenter;
  options.stale = consul.stale;
  options.wait = consul.wait_time;
  options.max_connections = consul.max_connections;
  options.max_answer_bytes = static_cast<std::size_t>(consul.max_answer_size);
  options.backoff_initial = consul.retry_initial_backoff;
  options.backoff_max = consul.retry_max_backoff;
  options.tls = {consul.tls.ca_file,  consul.tls.ca_path,     consul.tls.cert_file,
                 consul.tls.key_file, consul.tls.server_name, consul.tls.insecure_skip_verify};
  return options;
}

EngineOptions EngineOptionsFor(const WatchConfig& watch) {
  EngineOptions engine;
  engine.up_statuses = watch.up_statuses;
  engine.down_after = watch.down_after;
  engine.up_after = watch.up_after;
  engine.initial_events = watch.initial_events;
  return engine;
}

ServiceFilterOptions ServiceFilterFor(const ServiceSelection& services) {
  return {services.include, services.exclude, services.tags};
}

std::vector<ServiceFilterOptions> SourceFiltersFor(const WatchConfig& watch) {
  if (watch.sources.empty()) return {ServiceFilterFor(watch.services)};
  std::vector<ServiceFilterOptions> filters;
  for (const SourceConfig& source : watch.sources) {
    filters.push_back({source.include, source.exclude, source.tags});
  }
  return filters;
}

WatcherOptions WatcherOptionsFor(const BridgeConfig& config) {
  WatcherOptions watch;
  watch.services = ServiceFilterFor(config.watch.services);
  watch.datacenter = config.consul.datacenter;
  for (const SourceConfig& source : config.watch.sources) {
    watch.sources.push_back({source.datacenter,
                             source.peer,
                             source.ns,
                             source.partition,
                             {source.include, source.exclude, source.tags}});
  }
  watch.unreachable_grace = config.watch.unreachable_grace;
  // The first request (/v1/agent/self) backs off like every other one.
  watch.agent_retry_initial = config.consul.retry_initial_backoff;
  watch.agent_retry_max = config.consul.retry_max_backoff;
  return watch;
}

}  // namespace hb

#include "bridge/watch/watcher.h"

#include <algorithm>

namespace hb {
namespace {

// One SourceWatch's options per source: the source's datacenter, scope,
// filter and share of the connection budget.
std::vector<WatcherOptions> PerSource(const WatcherOptions& options, std::size_t max_connections) {
  std::vector<WatchSource> sources = options.sources;
  if (sources.empty()) sources.push_back({options.datacenter, "", "", "", options.services});
  const std::size_t count = sources.size();
  std::vector<WatcherOptions> out;
  for (std::size_t i = 0; i < count; ++i) {
    WatcherOptions one = options;
    one.sources.clear();
    one.services = sources[i].services;
    if (!sources[i].datacenter.empty()) one.datacenter = sources[i].datacenter;
    one.scope = {sources[i].peer, sources[i].ns, sources[i].partition, count > 1};
    if (count > 1 && max_connections > 0) {
      // What an equal split leaves over goes to the first source, the
      // agent's own as a rule.
      one.connection_budget = max_connections / count + (i == 0 ? max_connections % count : 0);
    }
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace

Watcher::Watcher(const WatcherOptions& options, ConsulClient& client,
                 std::unique_ptr<TransitionEngine> engine, EventPublisher& publisher,
                 const Clock& clock)
    : engine_(std::move(engine)) {
  std::vector<WatcherOptions> per_source = PerSource(options, client.options().max_connections);
  engine_->ExpectSources(per_source.size());
  for (WatcherOptions& one : per_source) {
    sources_.push_back(
        std::make_unique<SourceWatch>(std::move(one), client, *engine_, publisher, clock));
  }
}

Watcher::~Watcher() { Stop(); }

void Watcher::Start() {
  for (auto& source : sources_) source->Start();
}

void Watcher::Stop() {
  for (auto& source : sources_) source->Stop();
}

std::vector<WatchState> Watcher::SourceStates() const {
  std::vector<WatchState> states;
  states.reserve(sources_.size());
  for (const auto& source : sources_) states.push_back(source->State());
  return states;
}

WatchState Watcher::State() const {
  std::vector<WatchState> states = SourceStates();
  if (states.size() == 1) return std::move(states.front());
  WatchState all = states.front();
  all.watched_services = all.dedicated_services = all.covered_services = 0;
  for (const WatchState& state : states) {
    all.watched_services += state.watched_services;
    all.dedicated_services += state.dedicated_services;
    all.covered_services += state.covered_services;
    if (state.last_success && (!all.last_success || *state.last_success > *all.last_success)) {
      all.last_success = state.last_success;
    }
  }
  // A further source holds readiness only while it syncs for the first time
  // and answers: one that cannot be read is reported as unavailable, not
  // as the bridge being unready.
  for (std::size_t i = 1; i < states.size(); ++i) {
    const bool settled = states[i].initial_sync_done || states[i].last_error.has_value();
    all.initial_sync_done = all.initial_sync_done && settled;
    all.ready = all.ready && settled;
  }
  return all;
}

void Watcher::WithEngine(const std::function<void(const TransitionEngine&)>& visit) {
  sources_.front()->WithEngine(visit);
}

void Watcher::UpdateServiceFilters(const WatcherOptions& options) {
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    sources_[i]->UpdateServiceFilter(i < options.sources.size() ? options.sources[i].services
                                                                : options.services);
  }
}

void Watcher::UpdateEngineOptions(const EngineOptions& options) {
  // Each source re-plans its own tick from the engine's new deadlines.
  for (auto& source : sources_) source->UpdateEngineOptions(options);
}

void Watcher::OnEngineChanged(const std::function<void(const TransitionEngine&)>& changed) {
  for (auto& source : sources_) source->OnEngineChanged(changed);
}

}  // namespace hb

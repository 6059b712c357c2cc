#pragma once

// The watch of every configured source (watch.sources): one SourceWatch per
// source (source_watch.h), each with its own queries, indexes, readiness and
// error state, all on the Consul client's loop thread and all feeding one
// transition engine, whose keys tell the sources apart. Without sources
// configured it is exactly one SourceWatch, as before sources existed.
//
// The sources share ConsulClientOptions::max_connections: each gets an
// equal share (at least 3: its catalog watch, its change detector and one
// read), so together they stay within it.
//
// Readiness is the first source's: a further source that cannot be read (a
// datacenter Consul has no path to, a peering that is not active) is
// "unavailable", shown per source (SourceStates()), and keeps its last known
// state rather than reporting its instances down; once it answers again
// each of its services' next answer is diffed, marked reconciled.
//
// The public methods are thread-safe.

#include <functional>
#include <memory>
#include <vector>

#include "bridge/watch/source_watch.h"

namespace hb {

class Watcher {
 public:
  // `client` and `publisher` must outlive the watcher. The watcher owns the
  // engine (restore saved state into it before handing it over).
  Watcher(const WatcherOptions& options, ConsulClient& client,
          std::unique_ptr<TransitionEngine> engine, EventPublisher& publisher, const Clock& clock);
  ~Watcher();

  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void Start();
  void Stop();

  // The bridge's watch as a whole: ready when the first source is, and
  // every other source synced once or is unavailable now; the counts are
  // the sums over the sources.
  WatchState State() const;
  // Each source's own state, in the order of WatcherOptions::sources.
  std::vector<WatchState> SourceStates() const;

  void WithEngine(const std::function<void(const TransitionEngine&)>& visit);
  // Config reload: each source takes its services from `options` (its own
  // in WatcherOptions::sources, or `services` without sources). The list of
  // sources itself is fixed for the watcher's life.
  void UpdateServiceFilters(const WatcherOptions& options);
  void UpdateEngineOptions(const EngineOptions& options);
  void OnEngineChanged(const std::function<void(const TransitionEngine&)>& changed);

  std::size_t source_count() const { return sources_.size(); }

 private:
  std::unique_ptr<TransitionEngine> engine_;
  // Declared after the engine: destroyed (stopped) before it.
  std::vector<std::unique_ptr<SourceWatch>> sources_;
};

}  // namespace hb

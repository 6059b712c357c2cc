#pragma once

// The watch of every configured source (watch.sources): one SourceWatch per
// source (source_watch.h), each with its own queries, indexes, readiness and
// error state, all on the Consul client's loop thread and all feeding one
// transition engine, whose keys tell the sources apart. Without sources
// configured it is exactly one SourceWatch, as before sources existed.
//
// Sources named in full are fixed for the watcher's life, and share
// ConsulClientOptions::max_connections equally (at least 3 each: a catalog
// watch, a change detector and one read).
//
// An entry with a wildcard (`datacenter: all`, `peer: all`, `namespace:
// "*"`, `partition: "*"`) is a template: the watcher lists what it names
// (/v1/catalog/datacenters, /v1/peerings, /v1/partitions, /v1/namespaces,
// each every source_list_interval, one request at a time on a connection
// of its own) and runs one SourceWatch per source found, the entries named
// in full included; a source two entries name is watched once, with the
// first entry's services.
//
// The budget then follows the sources: one connection lists them, and the
// N sources watched (or admitted and waiting for connections) share the
// rest, B - 1, evenly: max(3, (B - 1) / N) each, re-split whenever a source
// comes or goes. At most max_sources are admitted (B >= 1 + 3 x max_sources
// is checked at load), so a share is never below 3. A source found while
// max_sources are admitted is refused, shown unavailable with the reason,
// and admitted on a later listing once there is room.
//
// The rule that keeps the bridge within B at every moment: a share
// shrinks at once, but grows (and a source admitted starts) only out of
// connections actually free. Each source commits the most of its share
// and what it holds (SourceWatch::ConnectionsCommitted(): queries it
// retired on shrinking keep their connections until their waits end); a
// dropped source commits what it held until Consul has certainly let go
// of it; the lists commit one. A share grows only while the sum of all
// of these stays within B, partly if that is all there is, and is re-checked
// each time a retired query ends, a dropped source's connections are free,
// and on every listing.
// - A source found for the first time syncs silently, like a first start
//   (unless saved state knows it): a datacenter joining the WAN is no burst
//   of registrations.
// - A source no longer listed (a datacenter gone from the WAN list, a
//   peering no longer active, a namespace deleted) keeps being watched for
//   source_grace and shows unavailable meanwhile; its instances keep their
//   last known state (no instance.down). Listed again within the grace, it
//   goes on as before, and whatever changed while it could not be read is
//   reconciled (reconciled: true). Past the grace it is dropped: its state
//   leaves the engine silently (sinks that hold state drop its series,
//   notification sinks hear nothing), a log line and a metric say so, and
//   its connections count against the budget until Consul has certainly
//   let go of them (consul.wait_time and its jitter). Listed again after
//   that, it is a new source.
// - A list that cannot be read keeps the sources it gave last: an error is
//   never an empty list.
//
// Readiness is the first source's when all are named in full: a further
// source that cannot be read (a datacenter Consul has no path to, a
// peering that is not active) is "unavailable", shown per source
// (SourceStates()), and keeps its last known state rather than reporting
// its instances down; once it answers again each of its services' next
// answer is diffed, marked reconciled. With templates the bridge is ready
// once the lists were read and every source found synced once or is
// unavailable.
//
// The public methods are thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/common/mutex.h"
#include "bridge/watch/source_lists.h"
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

  // The bridge's watch as a whole (see above); the counts are the sums
  // over the sources.
  WatchState State() const;
  // Each source's own state: in the order of WatcherOptions::sources, or
  // with templates in the order found (refused sources included, their
  // reason as last_error).
  std::vector<WatchState> SourceStates() const;

  // Sources found at run time: dropped since the start, and refused now
  // (past max_sources).
  std::uint64_t dropped_sources() const;
  std::size_t refused_sources() const;
  // Whether the first source stands for the bridge's readiness (all sources
  // named in full): the others' errors do not take it away.
  bool has_primary_source() const { return !templates_; }

  void WithEngine(const std::function<void(const TransitionEngine&)>& visit);
  // Config reload: each source takes its services from `options` (its
  // entry's in WatcherOptions::sources, or `services` without sources). The
  // list of entries itself is fixed for the watcher's life.
  void UpdateServiceFilters(const WatcherOptions& options);
  void UpdateEngineOptions(const EngineOptions& options);
  void OnEngineChanged(const std::function<void(const TransitionEngine&)>& changed);

  std::size_t source_count() const;
  // Templates: the connections committed now under the rule above (the
  // lists', every source's, dropped sources' still draining), never more
  // than consul.max_connections; 0 without templates.
  std::size_t connections_committed();

 private:
  // A source found at run time (templates only).
  struct Found {
    FoundSource found;
    std::unique_ptr<SourceWatch> watch;        // null while refused
    std::optional<SteadyTime> vanished_since;  // no longer listed since
    std::optional<SteadyTime> refused_since;
    // Admitted under max_sources, not started yet: waits for 3 free
    // connections (others still hold theirs).
    bool waiting = false;
  };
  // A dropped source's connections, committed until Consul let them go.
  struct Draining {
    SteadyTime until;
    std::size_t connections = 0;
  };

  // Loop thread, templates only.
  void ListLocalDatacenter();
  void StartListing();
  void ReadNextList();
  void OnList(const SourceList& list, StatusOr<std::string> body);
  void ScheduleListing(std::chrono::milliseconds delay);
  void Reconcile(const std::vector<FoundSource>& found);
  // Admits `source` under max_sources (it waits for connections, started
  // by Resplit()), or refuses it.
  bool Admit(Found& source);
  void StartSource(Found& source, std::size_t budget);
  void Drop(const std::string& key);
  // Re-splits the budget among the sources admitted (see above), starting
  // those waiting once there are connections for them.
  void Resplit();
  void ScheduleResplit(SteadyTime at);
  // Loop thread: the sum the rule above bounds, `admitted` being the
  // sources watched or waiting.
  std::size_t Committed(const std::vector<Found*>& admitted) const;
  WatcherOptions OptionsFor(const FoundSource& found, std::size_t budget) const;

  const WatcherOptions options_;
  ConsulClient& client_;
  EventPublisher& publisher_;
  const Clock& clock_;
  const bool templates_;
  std::unique_ptr<TransitionEngine> engine_;
  // Declared after the engine: destroyed (stopped) before it. Fixed sources
  // (no templates).
  std::vector<std::unique_ptr<SourceWatch>> sources_;

  // Templates: loop-thread state of the listing.
  std::string local_datacenter_;
  std::map<std::string, std::optional<std::vector<std::string>>, std::less<>> cycle_lists_;
  std::map<std::string, std::vector<std::string>, std::less<>> last_good_;
  bool cycle_failed_root_ = false;
  std::optional<EventLoop::TimerId> list_timer_;
  std::chrono::milliseconds list_retry_;
  std::function<void(const TransitionEngine&)> engine_changed_;
  std::vector<ServiceFilterOptions> entry_services_;  // each entry's, for new sources
  std::vector<Draining> draining_;
  std::optional<EventLoop::TimerId> drain_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  mutable Mutex mutex_;
  // Templates: every source found, in the order found.
  std::vector<std::unique_ptr<Found>> found_ GUARDED_BY(mutex_);
  bool listed_ GUARDED_BY(mutex_) = false;  // a listing completed
  std::optional<Status> list_error_ GUARDED_BY(mutex_);
  std::optional<SteadyTime> list_failing_since_ GUARDED_BY(mutex_);
  std::uint64_t dropped_ GUARDED_BY(mutex_) = 0;
  bool stopped_ GUARDED_BY(mutex_) = false;
};

}  // namespace hb

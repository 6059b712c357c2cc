#pragma once

// The /v1/instances document: the watched instances as the engine sees
// them. Off unless configured (server.instances), since instance metadata
// is where teams put things they should not; even then only the meta keys
// on an allow-list are shown.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bridge/common/mutex.h"
#include "bridge/server/http_server.h"
#include "bridge/state/transition_engine.h"

namespace hb {

struct InstancesDocumentOptions {
  // Meta keys shown; every other key is left out. Default: none.
  std::vector<std::string> meta_keys;
};

// {"instances": [{"datacenter", "service", "id", "node", "address", "port",
//   "tags", "meta", "status", "up", "since", "checks": [...]}, ...]}, with
// only the instances whose service and status match the query's `service`
// and `status` (each may repeat; absent: all). Check output is cut to 1 KiB.
std::string InstancesJson(const std::vector<InstanceView>& instances,
                          const InstancesDocumentOptions& options, const QueryParams& query);

// Serves the document from an immutable snapshot of the engine's view
// that the watch thread publishes after each batch of changes (see
// Watcher::OnEngineChanged). A refresh copies only the services whose part
// of the view changed since the previous one and shares the rest, so it
// costs those services' instances plus a pointer per service; a request
// reads the last snapshot and builds the JSON on its own thread, and never
// makes the watch thread do anything.
class InstancesEndpoint {
 public:
  explicit InstancesEndpoint(InstancesDocumentOptions options);

  // The engine's thread only. Returns how many instances it copied.
  std::size_t Refresh(const TransitionEngine& engine);
  // Any thread.
  std::string Json(const QueryParams& query) const;

 private:
  struct ServicePart {
    std::uint64_t version = 0;
    std::shared_ptr<const std::vector<InstanceView>> instances;
  };
  // By the engine's service key, in the order of its Instances().
  using Snapshot = std::map<std::string, ServicePart, std::less<>>;

  const InstancesDocumentOptions options_;
  std::shared_ptr<const Snapshot> last_ = std::make_shared<const Snapshot>();  // engine's thread
  mutable Mutex mutex_;
  std::shared_ptr<const Snapshot> published_ GUARDED_BY(mutex_) = last_;
};

}  // namespace hb

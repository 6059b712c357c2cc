#pragma once

// The /v1/instances document: the watched instances as the engine sees
// them. Off unless configured (server.instances), since instance metadata
// is where teams put things they should not; even then only the meta keys
// on an allow-list are shown.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bridge/common/clock.h"
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

// Serves the document from a copy of the engine's view that is at most
// `max_age` old, so the watch thread copies the view at most once per
// max_age however many clients ask, and the JSON is built on the caller's
// thread. Thread-safe.
class InstancesEndpoint {
 public:
  using CopyView = std::function<std::vector<InstanceView>()>;
  InstancesEndpoint(InstancesDocumentOptions options, CopyView copy_view, const Clock& clock,
                    std::chrono::milliseconds max_age = std::chrono::seconds(1));

  std::string Json(const QueryParams& query);

 private:
  const InstancesDocumentOptions options_;
  const CopyView copy_view_;
  const Clock& clock_;
  const std::chrono::milliseconds max_age_;
  Mutex mutex_;
  std::shared_ptr<const std::vector<InstanceView>> view_ GUARDED_BY(mutex_);
  SteadyTime copied_at_ GUARDED_BY(mutex_) = {};
};

}  // namespace hb

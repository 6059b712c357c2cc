#pragma once

// health-bridge as the end-to-end tests, the demo and the benchmarks run it:
// the built binary with a config of theirs, Consul's environment variables
// of the developer's shell cleared, its HTTP server on a loopback port of
// its own, started and stopped by PID.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "tests/support/process/child_process.h"

namespace hb::test_support {

class BridgeProcess {
 public:
  // Writes `config` (YAML) with `server: {listen: 127.0.0.1:0}` and a text
  // log added, starts `binary` on it and waits up to `sync_timeout` for the
  // initial sync. ok() tells whether it got there.
  BridgeProcess(const std::filesystem::path& binary, const std::string& config,
                ChildProcess::Options options = {},
                std::chrono::milliseconds sync_timeout = std::chrono::seconds(20));
  // SIGKILLs it if it still runs; removes the config file.
  ~BridgeProcess();

  BridgeProcess(const BridgeProcess&) = delete;
  BridgeProcess& operator=(const BridgeProcess&) = delete;

  bool ok() const { return port_ > 0; }
  // The port of /metrics, /healthz, /readyz and /v1/instances.
  int port() const { return port_; }
  ChildProcess& process() { return *process_; }
  // SIGTERM, then the exit code (nullopt when it did not exit in time).
  std::optional<int> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGKILL: a crash, nothing flushed or saved on the way out.
  void Kill();
  // Rewrites the config file (with the same server and log lines) and sends
  // SIGHUP; true once the bridge logged that it finished reloading.
  bool Reload(const std::string& config,
              std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // One sample of /metrics, e.g. Metric("health_bridge_spool_bytes",
  // "sink=\"hooks\""); nullopt when absent or unreachable.
  std::optional<double> Metric(const std::string& name, const std::string& labels = "") const;

 private:
  std::filesystem::path config_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

}  // namespace hb::test_support

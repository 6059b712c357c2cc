#pragma once

// A server of the Prometheus project (prometheus, alertmanager) as a test
// peer: its own temporary directory, an unused loopback port, readiness
// through /-/ready, and a stop by PID. The wrappers of each server write
// their config into directory() and Start() it.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process/child_process.h"

namespace hb::test_support {

class ServerProcess {
 public:
  // `name` prefixes the temporary directory ("hb-alertmanager-<pid>-...").
  explicit ServerProcess(const std::string& name);
  // Kills the server if still running and removes its directory.
  ~ServerProcess();

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::filesystem::path& directory() const { return directory_; }
  int port() const { return port_; }
  // "127.0.0.1:<port>", for the server's listen flag.
  std::string listen_address() const { return "127.0.0.1:" + std::to_string(port_); }

  void Start(const std::filesystem::path& program, const std::vector<std::string>& args);
  // Kills the server (SIGKILL: nothing of its state matters to a test).
  void Stop();
  bool Running() { return process_ && process_->Running(); }
  // Waits until GET /-/ready answers 200 over plain HTTP; false when the
  // server exited or `timeout` passed.
  bool WaitReady(std::chrono::milliseconds timeout);
  // The same with the caller's probe (a server that wants credentials).
  bool WaitReady(const std::function<bool()>& ready, std::chrono::milliseconds timeout);
  std::string Log() const { return process_ ? process_->Stderr() : ""; }

 private:
  std::filesystem::path directory_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace hb::test_support

#include "tests/support/prometheus/server_process.h"

#include <httplib.h>
#include <unistd.h>

#include <thread>

#include "tests/support/http/loopback_server.h"

namespace hb::test_support {

ServerProcess::ServerProcess(const std::string& name) {
  directory_ = std::filesystem::temp_directory_path() /
               ("hb-" + name + "-" + std::to_string(::getpid()) + "-" +
                std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  std::filesystem::create_directories(directory_);
  port_ = UnusedLoopbackPort();
}

ServerProcess::~ServerProcess() {
  process_.reset();  // SIGKILLs it if still running
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

void ServerProcess::Start(const std::filesystem::path& program,
                          const std::vector<std::string>& args) {
  process_ = std::make_unique<ChildProcess>(program, args);
}

void ServerProcess::Stop() { process_.reset(); }

bool ServerProcess::WaitReady(std::chrono::milliseconds timeout) {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::seconds(1));
  return WaitReady(
      [&] {
        auto response = client.Get("/-/ready");
        return response && response->status == 200;
      },
      timeout);
}

bool ServerProcess::WaitReady(const std::function<bool()>& ready,
                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    if (!Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace hb::test_support

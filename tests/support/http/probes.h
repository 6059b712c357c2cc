#pragma once

// The bridge's probes as Kubernetes asks them, for tests that attack the
// bridge and must show it still answers its liveness and readiness checks.

#include <httplib.h>

#include <chrono>
#include <string>

namespace hb::test_support {

// Asks /healthz and /readyz on 127.0.0.1:`port` `times` times, each with
// the chart's probe timeout (3 s). Returns "" when every answer was a 200,
// else the first that was not (or did not come).
inline std::string ProbeFailures(int port, int times = 1) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(std::chrono::seconds(3));
  for (int i = 0; i < times; ++i) {
    for (const char* path : {"/healthz", "/readyz"}) {
      const auto answer = client.Get(path);
      if (!answer)
        return std::string(path) + ": no answer within 3 s (probe " + std::to_string(i) + ")";
      if (answer->status != 200) {
        return std::string(path) + ": " + std::to_string(answer->status) + " " + answer->body;
      }
    }
  }
  return "";
}

}  // namespace hb::test_support

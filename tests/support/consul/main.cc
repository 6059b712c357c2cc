// consul-test-server: the project's Consul test server as a program, for the
// demo and manual play. Prints "listening on 127.0.0.1:<port>" when ready.

#include <algorithm>
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "config/duration.h"
#include "tests/support/consul/consul_test_server.h"

namespace {

// "dc2,dc3" -> {"dc2", "dc3"}; empty items are skipped.
std::vector<std::string> CommaList(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

}  // namespace

int main(int argc, char** argv) {
  hb::test_support::ConsulTestServerOptions options;
  std::vector<std::string> datacenters;
  std::vector<std::string> peers;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "consul-test-server: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    auto duration = [&] {
      const std::string text = value();
      auto parsed = hb::ParseDuration(text);
      if (!parsed) {
        std::cerr << "consul-test-server: " << arg << ": not a duration: " << text << "\n";
        std::exit(2);
      }
      return *parsed;
    };
    if (arg == "--port") {
      options.port = std::stoi(value());
    } else if (arg == "--datacenter") {
      options.datacenter = value();
    } else if (arg == "--node") {
      options.node = value();
    } else if (arg == "--acl-token") {
      options.acl_token = value();
    } else if (arg == "--reap-interval") {
      options.reap_interval = duration();
    } else if (arg == "--min-deregister-after") {
      options.min_deregister_critical_after = duration();
    } else if (arg == "--max-conns-per-client") {
      options.max_conns_per_client = std::stoul(value());
    } else if (arg == "--check-update-interval") {
      options.check_update_interval = duration();
    } else if (arg == "--min-session-ttl") {
      options.sessions.min_ttl = duration();
    } else if (arg == "--session-ttl-handback") {
      options.sessions.ttl_handback = std::stod(value());
      if (options.sessions.ttl_handback < 1.0) {
        std::cerr << "consul-test-server: --session-ttl-handback must be at least 1\n";
        std::exit(2);
      }
    } else if (arg == "--datacenters") {
      datacenters = CommaList(value());
    } else if (arg == "--peers") {
      peers = CommaList(value());
    } else if (arg == "--enterprise") {
      options.enterprise = true;
    } else if (arg == "--help") {
      std::cout << "usage: consul-test-server [--port N] [--datacenter dc1] [--node node-a]\n"
                   "       [--acl-token T] [--reap-interval 30s] [--min-deregister-after 1m]\n"
                   "       [--max-conns-per-client 200 (0: off)] [--check-update-interval 5m]\n"
                   "       [--min-session-ttl 10s] [--session-ttl-handback 1]\n"
                   "       [--datacenters dc2,dc3 (more datacenters)] [--peers p1,p2 (ACTIVE)]\n"
                   "       [--enterprise (serve ?ns= and ?partition=)]\n";
      return 0;
    } else {
      std::cerr << "consul-test-server: unknown argument '" << arg << "'\n";
      return 2;
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts

  hb::test_support::ConsulTestServer server(options);
  for (const std::string& name : datacenters) {
    if (!server.AddDatacenter(name)) {
      std::cerr << "consul-test-server: --datacenters: cannot add '" << name << "'\n";
      return 2;
    }
  }
  for (const std::string& name : peers) {
    if (!server.AddPeer(name)) {
      std::cerr << "consul-test-server: --peers: cannot add '" << name << "'\n";
      return 2;
    }
  }
  const int port = server.Start();
  if (port == 0) {
    std::cerr << "consul-test-server: cannot listen on " << options.host << ":" << options.port
              << "\n";
    return 1;
  }
  std::cout << "listening on " << options.host << ":" << port << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  server.Stop();
  return 0;
}

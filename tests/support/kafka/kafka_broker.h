#pragma once

// A real Apache Kafka broker as a test peer: one JVM running a single-node
// KRaft cluster (broker and controller in one process) on loopback, with
// the jars scripts/bootstrap fetched from Maven Central. Its storage is
// formatted once; Stop() and Start() restart the same broker on the same
// ports and data, as an operator's restart would. Stopped by PID.
//
// Listeners: PLAINTEXT for the tests' administration and for clients that
// need no authentication, SASL_PLAINTEXT with SCRAM-SHA-256 for the users
// given in Options, CONTROLLER for KRaft itself. With Options::authorizer,
// ACLs are enforced (StandardAuthorizer) for the SASL users; the PLAINTEXT
// principal (User:ANONYMOUS) is a super user, since the controller listener
// is plaintext and the test administers the cluster through it.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/child_process.h"

namespace hb::test_support {

// Where scripts/bootstrap put the broker: $HB_KAFKA_BROKER_DIR, else
// ${XDG_CACHE_HOME:-~/.cache}/health-bridge/kafka-<version of
// tests/support/kafka/broker/pom.xml>.
std::filesystem::path KafkaBrokerDirectory();

class KafkaBroker {
 public:
  struct Options {
    // SCRAM-SHA-256 users (name -> password) of the SASL_PLAINTEXT listener.
    std::map<std::string, std::string> scram_users;
    // Enforce ACLs for the SASL users.
    bool authorizer = false;
    // JIT tiers and GC chosen to start in seconds on two shared cores; the
    // benchmark turns this off to measure the broker at its steady speed.
    bool fast_start = true;
  };

  // Formats a fresh storage directory and starts the broker; throws
  // std::runtime_error naming what is missing (the jars: run
  // scripts/bootstrap) or what failed (with the tool's output).
  explicit KafkaBroker(Options options);
  KafkaBroker() : KafkaBroker(Options{}) {}
  ~KafkaBroker();  // SIGKILLs a broker still running, removes its storage

  KafkaBroker(const KafkaBroker&) = delete;
  KafkaBroker& operator=(const KafkaBroker&) = delete;

  // Until the broker answers a metadata request on the PLAINTEXT listener
  // (it may also just have exited: then false at once).
  bool WaitReady(std::chrono::milliseconds timeout);
  // SIGTERM, then a bounded wait (SIGKILL past it): a clean shutdown, the
  // way a rolling restart stops a broker.
  void Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Starts the stopped broker again, same ports and data; see WaitReady().
  void Start();
  bool Running();

  std::string bootstraps() const;       // PLAINTEXT, "127.0.0.1:port"
  std::string sasl_bootstraps() const;  // SASL_PLAINTEXT
  // The broker's own log (its stdout) of the current run, for failures.
  std::string Log() const;

  // Administration over PLAINTEXT (a super user); each throws
  // std::runtime_error with the broker's reason.
  void CreateTopic(const std::string& topic, int partitions);
  // ALLOW `operation` on the literal topic for User:`user` from any host.
  void AllowOnTopic(const std::string& user, const std::string& topic,
                    rd_kafka_AclOperation_t operation);

 private:
  // Ports, configuration files, formatted storage, the admin client.
  void Prepare();
  void Format();
  std::string ServerProperties() const;

  Options options_;
  std::filesystem::path libs_;
  std::filesystem::path directory_;
  int plaintext_port_ = 0;
  int sasl_port_ = 0;
  int controller_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
  KafkaHandle admin_;
};

}  // namespace hb::test_support

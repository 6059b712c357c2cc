#include "tests/support/kafka/kafka_broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace hb::test_support {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::filesystem::path Java() {
  if (const char* home = std::getenv("JAVA_HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / "bin" / "java";
  }
  return "/usr/bin/java";
}

// KRaft wants a cluster id of 16 random bytes in unpadded URL-safe base64.
std::string NewClusterId() {
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device random;
  std::array<unsigned char, 16> bytes{};
  for (auto& byte : bytes) byte = static_cast<unsigned char>(random());
  std::string id;
  unsigned bits = 0;
  int pending = 0;
  for (unsigned char byte : bytes) {
    bits = (bits << 8) | byte;
    pending += 8;
    while (pending >= 6) {
      pending -= 6;
      id += kAlphabet[(bits >> pending) & 0x3F];
    }
  }
  if (pending > 0) id += kAlphabet[(bits << (6 - pending)) & 0x3F];
  // kafka-storage's argument parser reads an id that starts with '-' (one
  // in 64) as an option and fails the format: draw again.
  if (id.front() == '-') return NewClusterId();
  return id;  // 22 characters
}

bool Bindable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return bound;
}

// A loopback port free now, for a broker that must be told its ports
// (the KRaft voters name the controller's) and keep them across restarts.
// Taken below the kernel's ephemeral range: the kernel hands ports of that
// range to every outgoing connection and bind(0) of the other test peers,
// so one there could be taken between this check, the broker's bind and a
// restart; below it, only an explicit bind can collide.
int FreePortBelowEphemeralRange() {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  constexpr int kLowest = 10000;
  if (ephemeral_low - kLowest >= 1000) {
    std::random_device random;
    std::uniform_int_distribution<int> pick(kLowest, ephemeral_low - 1);
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (const int port = pick(random); Bindable(port)) return port;
    }
  }
  // A machine whose ephemeral range starts low: any free port, then.
  std::random_device random;
  std::uniform_int_distribution<int> pick(1024, 65535);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (const int port = pick(random); Bindable(port)) return port;
  }
  throw std::runtime_error("no free loopback port for the Kafka broker");
}

void SetOrThrow(rd_kafka_conf_t* conf, const char* key, const char* value) {
  std::array<char, 512> error{};
  if (rd_kafka_conf_set(conf, key, value, error.data(), error.size()) != RD_KAFKA_CONF_OK) {
    throw std::runtime_error(std::string(key) + ": " + error.data());
  }
}

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* options) const {
    rd_kafka_AdminOptions_destroy(options);
  }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
using Conf = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using Queue = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using AdminOptions = std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter>;
using AdminEvent = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

constexpr milliseconds kAdminTimeout{30'000};

// Runs one admin request and returns its result event, or throws with
// what went wrong as a whole (each request's own errors are the caller's).
AdminEvent RunAdmin(rd_kafka_t* admin, rd_kafka_admin_op_t op, const char* what,
                    const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& send) {
  Queue queue(rd_kafka_queue_new(admin));
  AdminOptions options(rd_kafka_AdminOptions_new(admin, op));
  std::array<char, 512> error{};
  rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(kAdminTimeout.count()),
                                            error.data(), error.size());
  rd_kafka_AdminOptions_set_operation_timeout(
      options.get(), static_cast<int>(kAdminTimeout.count()), error.data(), error.size());
  send(options.get(), queue.get());
  AdminEvent event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(kAdminTimeout.count()) + 5000));
  if (!event) throw std::runtime_error(std::string(what) + ": no answer from the broker");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string(what) + ": " + rd_kafka_event_error_string(event.get()));
  }
  return event;
}

}  // namespace

std::filesystem::path KafkaBrokerDirectory() {
  if (const char* dir = std::getenv("HB_KAFKA_BROKER_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::filesystem::path cache;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    cache = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    cache = std::filesystem::path(home) / ".cache";
  }
  return cache / "health-bridge" / ("kafka-" HB_KAFKA_VERSION);
}

KafkaBroker::KafkaBroker(Options options) : options_(std::move(options)) {
  const std::filesystem::path home = KafkaBrokerDirectory();
  libs_ = home / "libs";
  if (!std::filesystem::exists(home / "complete")) {
    throw std::runtime_error("no Apache Kafka " HB_KAFKA_VERSION " broker in " + home.string() +
                             ": run scripts/bootstrap (it fetches it from Maven Central)");
  }
  if (!std::filesystem::exists(Java())) {
    throw std::runtime_error("no Java at " + Java().string() +
                             ": set JAVA_HOME or run scripts/bootstrap");
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "hb-kafka-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  directory_ = pattern;
  try {
    Prepare();
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    throw;
  }
  Start();
}

void KafkaBroker::Prepare() {
  plaintext_port_ = FreePortBelowEphemeralRange();
  do {
    sasl_port_ = FreePortBelowEphemeralRange();
  } while (sasl_port_ == plaintext_port_);
  do {
    controller_port_ = FreePortBelowEphemeralRange();
  } while (controller_port_ == plaintext_port_ || controller_port_ == sasl_port_);
  std::ofstream(directory_ / "server.properties") << ServerProperties();
  // The broker's log on its stdout: warnings, and the line saying it started.
  std::ofstream(directory_ / "log4j.properties")
      << "log4j.rootLogger=WARN, stdout\n"
      << "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
      << "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
      << "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
      << "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n";
  Format();

  Conf conf(rd_kafka_conf_new());
  SetOrThrow(conf.get(), "bootstrap.servers", bootstraps().c_str());
  // Refused connections while the broker starts or restarts are expected.
  SetOrThrow(conf.get(), "log_level", "0");
  std::array<char, 512> error{};
  admin_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error.data(), error.size()));
  if (!admin_) throw std::runtime_error(std::string("admin client: ") + error.data());
  (void)conf.release();  // owned by the handle now
}

KafkaBroker::~KafkaBroker() {
  admin_.reset();
  process_.reset();  // SIGKILLs it if still running
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string KafkaBroker::ServerProperties() const {
  const std::string host = "127.0.0.1:";
  std::ostringstream out;
  out << "process.roles=broker,controller\n"
      << "node.id=1\n"
      << "controller.quorum.voters=1@" << host << controller_port_ << "\n"
      << "controller.listener.names=CONTROLLER\n"
      << "listeners=PLAINTEXT://" << host << plaintext_port_ << ",SASL_PLAINTEXT://" << host
      << sasl_port_ << ",CONTROLLER://" << host << controller_port_ << "\n"
      << "advertised.listeners=PLAINTEXT://" << host << plaintext_port_ << ",SASL_PLAINTEXT://"
      << host << sasl_port_ << "\n"
      << "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
         "CONTROLLER:PLAINTEXT\n"
      << "inter.broker.listener.name=PLAINTEXT\n"
      << "sasl.enabled.mechanisms=SCRAM-SHA-256\n"
      << "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
         "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
      << "log.dirs=" << (directory_ / "data").string()
      << "\n"
      // A missing topic must stay missing: the tests check how it is reported.
      << "auto.create.topics.enable=false\n"
      << "num.partitions=1\n"
      // One node: the internal topics cannot have more replicas, and one
      // partition each keeps their creation quick.
      << "offsets.topic.replication.factor=1\n"
      << "offsets.topic.num.partitions=1\n"
      << "transaction.state.log.replication.factor=1\n"
      << "transaction.state.log.min.isr=1\n"
      << "transaction.state.log.num.partitions=1\n"
      << "group.initial.rebalance.delay.ms=0\n"
      // Two shared cores: Kafka's defaults (8 I/O threads, 3 network
      // threads, the log cleaner) only compete for them here.
      << "num.io.threads=2\n"
      << "num.network.threads=2\n"
      << "background.threads=2\n"
      << "log.cleaner.enable=false\n";
  if (options_.authorizer) {
    out << "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
        << "super.users=User:ANONYMOUS\n"
        << "allow.everyone.if.no.acl.found=false\n";
  }
  return out.str();
}

void KafkaBroker::Format() {
  std::vector<std::string> args{
      "-Xmx256m",
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      "-Dlog4j.configuration=file:" + (directory_ / "log4j.properties").string(),
      "-cp",
      (libs_ / "*").string(),
      "kafka.tools.StorageTool",
      "format",
      "--cluster-id",
      NewClusterId(),
      "--config",
      (directory_ / "server.properties").string()};
  for (const auto& [user, password] : options_.scram_users) {
    args.push_back("--add-scram");
    args.push_back("SCRAM-SHA-256=[name=" + user + ",password=" + password + "]");
  }
  const RunResult result = RunToCompletion(Java(), args, {}, std::chrono::seconds(60));
  if (result.exit_code != 0) {
    throw std::runtime_error("kafka-storage format failed (exit " +
                             std::to_string(result.exit_code) + "): " + result.out + result.err);
  }
}

void KafkaBroker::Start() {
  if (process_ && process_->Running()) return;
  std::vector<std::string> args;
  if (options_.fast_start) {
    // C1 only and the serial collector: the JVM starts in about half the
    // time on two cores, and test traffic never needs C2's code.
    args = {"-Xms256m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"};
  } else {
    args = {"-Xms1g", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"};
  }
  args.insert(args.end(),
              {"-XX:-UsePerfData", "-Djava.awt.headless=true",
               "-Dlog4j.configuration=file:" + (directory_ / "log4j.properties").string(), "-cp",
               (libs_ / "*").string(), "kafka.Kafka", (directory_ / "server.properties").string()});
  process_ = std::make_unique<ChildProcess>(Java(), args);
}

bool KafkaBroker::WaitReady(milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    if (!Running()) return false;
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_metadata(admin_.get(), 0, nullptr, &metadata, 1000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      const bool has_broker = metadata->broker_cnt > 0;
      rd_kafka_metadata_destroy(metadata);
      if (has_broker) return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

void KafkaBroker::Stop(milliseconds timeout) {
  if (!process_) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(timeout)) {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(10));
  }
}

bool KafkaBroker::Running() { return process_ && process_->Running(); }

std::string KafkaBroker::bootstraps() const {
  return "127.0.0.1:" + std::to_string(plaintext_port_);
}

std::string KafkaBroker::sasl_bootstraps() const {
  return "127.0.0.1:" + std::to_string(sasl_port_);
}

std::string KafkaBroker::Log() const {
  return process_ ? process_->Stdout() + process_->Stderr() : "";
}

void KafkaBroker::CreateTopic(const std::string& topic, int partitions) {
  std::array<char, 512> error{};
  rd_kafka_NewTopic_t* new_topic =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, error.data(), error.size());
  if (new_topic == nullptr) throw std::runtime_error("create topic " + topic + ": " + error.data());
  AdminEvent event = RunAdmin(admin_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, "create topic",
                              [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                rd_kafka_CreateTopics(admin_.get(), &new_topic, 1, options, queue);
                              });
  rd_kafka_NewTopic_destroy(new_topic);
  std::size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("create topic " + topic + ": " +
                               rd_kafka_topic_result_error_string(results[i]));
    }
  }
  // The controller has it; wait until the broker serves every partition,
  // so a test's first produce does not race the leader election.
  const auto deadline = steady_clock::now() + kAdminTimeout;
  while (steady_clock::now() < deadline) {
    rd_kafka_topic_t* handle = rd_kafka_topic_new(admin_.get(), topic.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    bool served = false;
    if (rd_kafka_metadata(admin_.get(), 0, handle, &metadata, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      served = metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
               metadata->topics[0].partition_cnt == partitions;
      for (int p = 0; served && p < metadata->topics[0].partition_cnt; ++p) {
        served = metadata->topics[0].partitions[p].leader >= 0;
      }
      rd_kafka_metadata_destroy(metadata);
    }
    rd_kafka_topic_destroy(handle);
    if (served) return;
    std::this_thread::sleep_for(milliseconds(50));
  }
  throw std::runtime_error("create topic " + topic + ": its partitions got no leader in time");
}

void KafkaBroker::AllowOnTopic(const std::string& user, const std::string& topic,
                               rd_kafka_AclOperation_t operation) {
  std::array<char, 512> error{};
  rd_kafka_AclBinding_t* binding = rd_kafka_AclBinding_new(
      RD_KAFKA_RESOURCE_TOPIC, topic.c_str(), RD_KAFKA_RESOURCE_PATTERN_LITERAL,
      ("User:" + user).c_str(), "*", operation, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, error.data(),
      error.size());
  if (binding == nullptr) throw std::runtime_error("ACL on " + topic + ": " + error.data());
  AdminEvent event = RunAdmin(admin_.get(), RD_KAFKA_ADMIN_OP_CREATEACLS, "create ACL",
                              [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                                rd_kafka_CreateAcls(admin_.get(), &binding, 1, options, queue);
                              });
  rd_kafka_AclBinding_destroy(binding);
  std::size_t count = 0;
  const rd_kafka_acl_result_t** results =
      rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(event.get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    if (const rd_kafka_error_t* failed = rd_kafka_acl_result_error(results[i])) {
      throw std::runtime_error("ACL on " + topic + ": " + rd_kafka_error_string(failed));
    }
  }
}

}  // namespace hb::test_support

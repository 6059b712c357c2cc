// Events per second through the router and the Kafka sink, against a bare
// librdkafka producer sending the same payloads with the same settings: the
// ratio is what the bridge's delivery path costs. Each pair runs twice: into
// librdkafka's mock cluster (/mock_cluster) and into a real Apache Kafka
// broker on loopback (/real_broker; scripts/bootstrap fetches it). Run
// pinned to one core: taskset -c 0 build/<dir>/bench/kafka_bench
// (the real broker's JVM is let out onto every core, see RealBroker()).

#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/sysinfo.h>

#include <array>
#include <atomic>
#include <ctime>
#include <stdexcept>

#include "bench/counting_observer.h"
#include "bridge/router/router.h"
#include "sinks/kafka/kafka_sink.h"
#include "tests/support/kafka/kafka_broker.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

constexpr char kTopic[] = "bench.health.events";
constexpr int kPartitions = 6;
constexpr int kEventsPerRun = 10'000;
constexpr int kInstances = 2'000;

enum class Target { kMockCluster, kRealBroker };

test_support::MockKafkaCluster& Cluster() {
  static const auto cluster = [] {
    auto created = std::make_unique<test_support::MockKafkaCluster>(3);
    created->CreateTopic(kTopic, kPartitions);
    return created;
  }();
  return *cluster;
}

// CPU time of the whole process (librdkafka's and the mock brokers' threads
// included): it tells CPU cost apart from waiting for acknowledgements.
double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

void ReportCpuPerEvent(benchmark::State& state, double cpu_seconds) {
  state.counters["cpu_us_per_event"] = benchmark::Counter(
      cpu_seconds * 1e6 / static_cast<double>(state.iterations() * kEventsPerRun));
}

std::vector<Event> Events() {
  std::vector<Event> events;
  events.reserve(kEventsPerRun);
  for (int i = 0; i < kEventsPerRun; ++i) {
    events.push_back(
        test_support::InstanceEvent("payments-" + std::to_string(i % kInstances),
                                    i % 2 == 0 ? EventType::kInstanceDown : EventType::kInstanceUp,
                                    static_cast<std::uint64_t>(1000 + i / kInstances)));
  }
  return events;
}

// A bare librdkafka producer with the Kafka sink's settings, so only the
// bridge's own work differs, sending payloads serialized beforehand.
class BareProducer {
 public:
  explicit BareProducer(const std::string& bootstraps) {
    KafkaConf conf(rd_kafka_conf_new());
    std::array<char, 512> error{};
    for (const auto& [key, value] : std::initializer_list<std::pair<const char*, std::string>>{
             {"bootstrap.servers", bootstraps},
             {"enable.idempotence", "true"},
             {"linger.ms", "5"},
             {"message.timeout.ms", "30000"}}) {
      rd_kafka_conf_set(conf.get(), key, value.c_str(), error.data(), error.size());
    }
    // Delivery reports, as any at-least-once producer needs and the sink
    // has. Without a callback librdkafka queues none, and flush() then
    // notices the last acknowledgement only at its next 10 ms tick.
    rd_kafka_conf_set_opaque(conf.get(), &acknowledged_);
    rd_kafka_conf_set_dr_msg_cb(conf.get(),
                                [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                                  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                                    ++*static_cast<std::atomic<std::size_t>*>(opaque);
                                });
    producer_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.release(), error.data(), error.size()));
    for (const Event& event : Events()) {
      payloads_.push_back({event.Subject(), SerializeCloudEvent(event, CloudEventOptions{})});
    }
  }

  // Produces the kEventsPerRun payloads and waits for their acknowledgements.
  void ProduceAll() {
    for (Payload& payload : payloads_) {
      rd_kafka_headers_t* headers = rd_kafka_headers_new(1);
      rd_kafka_header_add(headers, "content-type", -1, "application/cloudevents+json", -1);
      std::array<rd_kafka_vu_t, 5> fields{};
      fields[0].vtype = RD_KAFKA_VTYPE_TOPIC;
      fields[0].u.cstr = kTopic;
      fields[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
      fields[1].u.i = RD_KAFKA_MSG_F_COPY;
      fields[2].vtype = RD_KAFKA_VTYPE_KEY;
      fields[2].u.mem = {payload.key.data(), payload.key.size()};
      fields[3].vtype = RD_KAFKA_VTYPE_VALUE;
      fields[3].u.mem = {payload.value.data(), payload.value.size()};
      fields[4].vtype = RD_KAFKA_VTYPE_HEADERS;
      fields[4].u.headers = headers;
      while (rd_kafka_error_t* failed =
                 rd_kafka_produceva(producer_.get(), fields.data(), fields.size())) {
        rd_kafka_error_destroy(failed);
        rd_kafka_poll(producer_.get(), 10);
      }
    }
    rd_kafka_flush(producer_.get(), 30'000);
  }

  std::size_t acknowledged() const { return acknowledged_; }

 private:
  struct Payload {
    std::string key, value;
  };
  std::atomic<std::size_t> acknowledged_{0};
  test_support::KafkaHandle producer_;
  std::vector<Payload> payloads_;
};

// The real broker, started on first use. The JVM is a separate process
// doing the broker's work, not the client's: it is spawned with every core
// allowed (the child inherits the spawning thread's affinity, and taskset
// pinned this one), so the producers measured here stay on their core and
// the broker runs beside them, as it would on its own machine. It runs at
// its steady speed (C2, G1), not the tests' fast-start settings.
test_support::KafkaBroker& RealBroker() {
  static const auto broker = [] {
    cpu_set_t pinned;
    sched_getaffinity(0, sizeof(pinned), &pinned);
    cpu_set_t every;
    CPU_ZERO(&every);
    for (int cpu = 0; cpu < get_nprocs_conf() && cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &every);
    sched_setaffinity(0, sizeof(every), &every);
    test_support::KafkaBroker::Options options;
    options.fast_start = false;
    auto started = std::make_unique<test_support::KafkaBroker>(options);
    sched_setaffinity(0, sizeof(pinned), &pinned);
    if (!started->WaitReady(std::chrono::seconds(120))) {
      throw std::runtime_error("the Kafka broker did not become ready:\n" + started->Log());
    }
    started->CreateTopic(kTopic, kPartitions);
    // The JVM compiles the broker's produce path while it runs: whichever
    // benchmark came first would pay for that. Warm it up untimed.
    BareProducer warm_up(started->bootstraps());
    for (int round = 0; round < 20; ++round) warm_up.ProduceAll();
    return started;
  }();
  return *broker;
}

// bootstrap.servers of `target`, starting it if needed; empty with the
// reason in `error` when it cannot start.
std::string Bootstraps(Target target, std::string& error) {
  try {
    return target == Target::kMockCluster ? Cluster().bootstraps() : RealBroker().bootstraps();
  } catch (const std::exception& failure) {
    error = failure.what();
    return "";
  }
}

void BM_RouterToKafkaSink(benchmark::State& state, Target target) {
  std::string error;
  KafkaSinkSettings settings;
  settings.brokers = Bootstraps(target, error);
  if (settings.brokers.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  settings.topic = kTopic;
  SystemClock clock;
  bench::CountingObserver observer;
  Router router(clock, &observer);
  auto sink = KafkaSink::Create("bench", settings, CloudEventOptions{});
  if (!sink.ok()) {
    state.SkipWithError(sink.status().message().c_str());
    return;
  }
  router.AddSink(
      SinkRoute{}, std::move(sink).value(),
      {DeadLetterFile::Open("bench", "", [](const Event& e) { return SerializeCloudEvent(e, {}); })
           .value(),
       nullptr});
  const std::vector<Event> events = Events();
  // Untimed first round: connecting, the producer id and the topic's
  // metadata are a one-time cost, not throughput (both benchmarks do this).
  observer.Expect(events.size());
  router.Publish(events);
  observer.Wait();
  double cpu_seconds = 0;
  for (auto _ : state) {
    // The engine hands its events over; copying the input is not the
    // router's work (the bare producer's payloads are made untimed too).
    state.PauseTiming();
    std::vector<Event> copy = events;
    observer.Expect(events.size());
    state.ResumeTiming();
    const double cpu_before = ProcessCpuSeconds();
    router.Publish(std::move(copy));
    observer.Wait();
    cpu_seconds += ProcessCpuSeconds() - cpu_before;
  }
  state.SetItemsProcessed(state.iterations() * kEventsPerRun);
  ReportCpuPerEvent(state, cpu_seconds);
  router.Shutdown(std::chrono::seconds(10));
}
BENCHMARK_CAPTURE(BM_RouterToKafkaSink, mock_cluster, Target::kMockCluster)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_RouterToKafkaSink, real_broker, Target::kRealBroker)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_BareLibrdkafkaProducer(benchmark::State& state, Target target) {
  std::string failure;
  const std::string bootstraps = Bootstraps(target, failure);
  if (bootstraps.empty()) {
    state.SkipWithError(failure.c_str());
    return;
  }
  BareProducer producer(bootstraps);
  producer.ProduceAll();  // untimed, as above
  const double cpu_before = ProcessCpuSeconds();
  for (auto _ : state) producer.ProduceAll();
  ReportCpuPerEvent(state, ProcessCpuSeconds() - cpu_before);
  if (producer.acknowledged() !=
      static_cast<std::size_t>(kEventsPerRun) * (state.iterations() + 1)) {
    state.SkipWithError("not every message was acknowledged");
  }
  state.SetItemsProcessed(state.iterations() * kEventsPerRun);
}
BENCHMARK_CAPTURE(BM_BareLibrdkafkaProducer, mock_cluster, Target::kMockCluster)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_BareLibrdkafkaProducer, real_broker, Target::kRealBroker)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace hb

// Events per second through the router and the Kafka sink into librdkafka's
// mock cluster, against a bare librdkafka producer sending the same payloads
// with the same settings: the ratio is what the bridge's delivery path
// costs. Run pinned to one core: taskset -c 0 build/<dir>/bench/kafka_bench

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <ctime>

#include "bench/counting_observer.h"
#include "bridge/router/router.h"
#include "sinks/kafka/kafka_sink.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

constexpr char kTopic[] = "bench.health.events";
constexpr int kEventsPerRun = 10'000;
constexpr int kInstances = 2'000;

testing::MockKafkaCluster& Cluster() {
  static const auto cluster = [] {
    auto created = std::make_unique<testing::MockKafkaCluster>(3);
    created->CreateTopic(kTopic, 6);
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
        testing::InstanceEvent("payments-" + std::to_string(i % kInstances),
                               i % 2 == 0 ? EventType::kInstanceDown : EventType::kInstanceUp,
                               static_cast<std::uint64_t>(1000 + i / kInstances)));
  }
  return events;
}

void BM_RouterToKafkaSink(benchmark::State& state) {
  KafkaSinkSettings settings;
  settings.brokers = Cluster().bootstraps();
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
BENCHMARK(BM_RouterToKafkaSink)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BareLibrdkafkaProducer(benchmark::State& state) {
  KafkaConf conf(rd_kafka_conf_new());
  std::array<char, 512> error{};
  // The Kafka sink's settings, so only the bridge's own work differs.
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, std::string>>{
           {"bootstrap.servers", Cluster().bootstraps()},
           {"enable.idempotence", "true"},
           {"linger.ms", "5"},
           {"message.timeout.ms", "30000"}}) {
    rd_kafka_conf_set(conf.get(), key, value.c_str(), error.data(), error.size());
  }
  // Delivery reports, as any at-least-once producer needs and the sink has.
  // Without a callback librdkafka queues none, and flush() then notices the
  // last acknowledgement only at its next 10 ms tick.
  std::atomic<std::size_t> acknowledged{0};
  rd_kafka_conf_set_opaque(conf.get(), &acknowledged);
  rd_kafka_conf_set_dr_msg_cb(conf.get(),
                              [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                                if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                                  ++*static_cast<std::atomic<std::size_t>*>(opaque);
                              });
  testing::KafkaHandle producer(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf.release(), error.data(), error.size()));
  struct Payload {
    std::string key, value;
  };
  std::vector<Payload> payloads;
  for (const Event& event : Events()) {
    payloads.push_back({event.Subject(), SerializeCloudEvent(event, CloudEventOptions{})});
  }
  auto produce_all = [&] {
    for (Payload& payload : payloads) {
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
                 rd_kafka_produceva(producer.get(), fields.data(), fields.size())) {
        rd_kafka_error_destroy(failed);
        rd_kafka_poll(producer.get(), 10);
      }
    }
    rd_kafka_flush(producer.get(), 30'000);
  };
  produce_all();  // untimed, as above
  const double cpu_before = ProcessCpuSeconds();
  for (auto _ : state) produce_all();
  ReportCpuPerEvent(state, ProcessCpuSeconds() - cpu_before);
  if (acknowledged != payloads.size() * (state.iterations() + 1)) {
    state.SkipWithError("not every message was acknowledged");
  }
  state.SetItemsProcessed(state.iterations() * kEventsPerRun);
}
BENCHMARK(BM_BareLibrdkafkaProducer)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace hb

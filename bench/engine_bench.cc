// Transition engine and serialization micro-benchmarks (issue: engine diff
// ns/instance, serialization ns/event). Run: build/<dir>/bench/engine_bench

#include <benchmark/benchmark.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "bridge/consul/answer_parsers.h"
#include "bridge/model/cloud_event.h"
#include "bridge/state/transition_engine.h"

namespace hb {
namespace {

Instance BenchInstance(int i, HealthStatus status) {
  Instance instance;
  instance.node = "node-" + std::to_string(i % 500);
  instance.id = "payments-" + std::to_string(i);
  instance.service = "payments";
  instance.address = "10.1." + std::to_string(i % 250) + "." + std::to_string(i % 200);
  instance.port = 8000 + i % 1000;
  instance.tags = {"v2", "primary"};
  instance.meta = {{"version", "2.4.1"}};
  Check serf;
  serf.id = "serfHealth";
  serf.name = "Serf Health Status";
  serf.status = HealthStatus::kPassing;
  serf.output = "Agent alive and reachable";
  Check ttl;
  ttl.id = "service:" + instance.id;
  ttl.name = "Service TTL";
  ttl.status = status;
  ttl.service_id = instance.id;
  ttl.type = "ttl";
  instance.checks = {serf, ttl};
  return instance;
}

ServiceSnapshot BenchSnapshot(int instances, int flip_offset, int changed, std::uint64_t index) {
  ServiceSnapshot snapshot;
  snapshot.datacenter = "dc1";
  snapshot.service = "payments";
  snapshot.index = index;
  snapshot.instances.reserve(instances);
  for (int i = 0; i < instances; ++i) {
    const bool flipped = ((i - flip_offset + instances) % instances) < changed;
    snapshot.instances.push_back(
        BenchInstance(i, flipped ? HealthStatus::kCritical : HealthStatus::kPassing));
  }
  return snapshot;
}

// One service of N instances; every snapshot flips 1% of them (alternating
// sets, so each snapshot is a real change). Snapshot construction is
// excluded from the timing.
void BM_EngineApplyOnePercentChanged(benchmark::State& state) {
  const int instances = static_cast<int>(state.range(0));
  const int changed = instances / 100;
  SystemClock clock;
  TransitionEngine engine({}, clock);
  std::uint64_t index = 1;
  engine.Apply(BenchSnapshot(instances, 0, 0, index++));
  engine.CompleteInitialSync();
  std::size_t events = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto snapshot = BenchSnapshot(instances, (round++ % 50) * changed, changed, index++);
    state.ResumeTiming();
    events += engine.Apply(std::move(snapshot)).size();
  }
  state.counters["ns_per_instance"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * instances,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["events_per_snapshot"] =
      static_cast<double>(events) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EngineApplyOnePercentChanged)->Arg(10000)->Unit(benchmark::kMicrosecond);

void BM_EngineApplyUnchanged(benchmark::State& state) {
  const int instances = static_cast<int>(state.range(0));
  SystemClock clock;
  TransitionEngine engine({}, clock);
  std::uint64_t index = 1;
  engine.Apply(BenchSnapshot(instances, 0, 0, index++));
  engine.CompleteInitialSync();
  for (auto _ : state) {
    state.PauseTiming();
    auto snapshot = BenchSnapshot(instances, 0, 0, index++);
    state.ResumeTiming();
    benchmark::DoNotOptimize(engine.Apply(std::move(snapshot)));
  }
  state.counters["ns_per_instance"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * instances,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_EngineApplyUnchanged)->Arg(10000)->Unit(benchmark::kMicrosecond);

Event BenchDownEvent() {
  Event event;
  event.type = EventType::kInstanceDown;
  event.id = "dc1/node-a/payments-1/2731/instance.down";
  event.datacenter = "dc1";
  event.service = "payments";
  const Instance instance = BenchInstance(1, HealthStatus::kCritical);
  event.instance_id = instance.id;
  event.node = instance.node;
  event.address = instance.address;
  event.port = instance.port;
  event.tags = instance.tags;
  event.meta = instance.meta;
  event.checks = instance.checks;
  event.status = HealthStatus::kCritical;
  event.previous_status = HealthStatus::kPassing;
  event.reason = DownReason::kCritical;
  return event;
}

// Structured mode: the whole event as one JSON text (webhook, log, Kafka's
// default mode).
void BM_SerializeCloudEvent(benchmark::State& state) {
  const Event event = BenchDownEvent();
  const CloudEventOptions options;
  for (auto _ : state) benchmark::DoNotOptimize(SerializeCloudEvent(event, options));
}
BENCHMARK(BM_SerializeCloudEvent);

// Binary mode (Kafka's mode: binary): the attributes as text, `data` alone
// into a reused buffer, as the Kafka sink does per message.
void BM_SerializeCloudEventBinary(benchmark::State& state) {
  const Event event = BenchDownEvent();
  const CloudEventOptions options;
  std::string value;
  for (auto _ : state) {
    benchmark::DoNotOptimize(CloudEventAttributes(event, options));
    SerializeCloudEventData(event, options, value);
    benchmark::DoNotOptimize(value);
  }
}
BENCHMARK(BM_SerializeCloudEventBinary);

// A /v1/health/service answer of `instances` entries shaped exactly like
// the documented one (tests/fixtures/consul), fields the bridge ignores
// included: each change of a service makes Consul send all of it again.
std::string HealthAnswerBody(int instances) {
  std::ifstream fixture(HB_SOURCE_DIR "/tests/fixtures/consul/health_service.json");
  const nlohmann::json documented = nlohmann::json::parse(fixture)[0];
  nlohmann::json answer = nlohmann::json::array();
  for (int i = 0; i < instances; ++i) {
    nlohmann::json entry = documented;
    const std::string id = "redis-" + std::to_string(i);
    entry["Node"]["Node"] = "node-" + std::to_string(i % 50);
    entry["Service"]["ID"] = id;
    entry["Checks"][0]["CheckID"] = "service:" + id;
    entry["Checks"][0]["ServiceID"] = id;
    answer.push_back(std::move(entry));
  }
  return answer.dump();
}

void BM_ParseHealthAnswer(benchmark::State& state) {
  const int instances = static_cast<int>(state.range(0));
  const std::string body = HealthAnswerBody(instances);
  for (auto _ : state) {
    auto parsed = ParseHealthService(body);
    if (!parsed.ok()) state.SkipWithError(parsed.status().message().c_str());
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  state.counters["ns_per_instance"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * instances,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ParseHealthAnswer)->Arg(60)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace hb

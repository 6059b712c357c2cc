// What the spool (state.dir) costs: events per second through the router to
// a sink that acknowledges at once, with and without the sink's on-disk
// spool. The sink is free on purpose, so the figure is the delivery path's
// own ceiling; a real sink (Kafka, HTTP) is slower than both.
//
//   build/<dir>/bench/spool_bench   (scripts/bench spool)

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "bench/counting_observer.h"
#include "bridge/router/router.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

constexpr int kEventsPerRun = 10'000;
constexpr int kInstances = 2'000;

class InstantSink final : public Sink {
 public:
  std::string_view Name() const override { return "instant"; }
  std::size_t MaxBatch() const override { return 256; }
  void Deliver(std::span<const EventPtr>, std::span<DeliveryResult> results) noexcept override {
    for (auto& result : results) result = DeliveryResult::Ok();
  }
  bool Shutdown(std::chrono::milliseconds) noexcept override { return true; }
};

// Argument 0: memory only; 1: with the spool; 2: with the spool and one
// fdatasync per run of 10,000 events, as the state saver does once per
// save_interval.
void BM_RouterDelivery(benchmark::State& state) {
  const bool spooled = state.range(0) >= 1;
  const bool synced = state.range(0) == 2;
  const auto dir =
      std::filesystem::temp_directory_path() / ("hb-spool-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  SinkStorage storage{
      DeadLetterFile::Open("instant", "", [](const Event&) { return "{}"; }).value(), nullptr};
  if (spooled) {
    SpoolRecovery recovery;
    storage.spool = Spool::Open({dir}, recovery).value();
  }
  SystemClock clock;
  bench::CountingObserver observer;
  Router router(clock, &observer);
  SinkRoute route;
  route.worker.queue_capacity = kEventsPerRun;
  router.AddSink(route, std::make_unique<InstantSink>(), std::move(storage));

  std::vector<Event> events;
  for (int i = 0; i < kEventsPerRun; ++i) {
    events.push_back(
        test_support::InstanceEvent("payments-" + std::to_string(i % kInstances),
                                    i % 2 == 0 ? EventType::kInstanceDown : EventType::kInstanceUp,
                                    static_cast<std::uint64_t>(1000 + i)));
  }
  for (auto _ : state) {
    observer.Expect(events.size());
    router.Publish(events);
    observer.Wait();
    if (synced) benchmark::DoNotOptimize(router.SyncSpools());
  }
  state.SetItemsProcessed(state.iterations() * kEventsPerRun);
  router.Shutdown(std::chrono::seconds(10));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RouterDelivery)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace hb

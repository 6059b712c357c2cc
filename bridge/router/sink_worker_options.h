#pragma once

// How one sink's worker queues and retries: the one definition of these
// options and their defaults. Each sink of the config embeds them (its
// `queue` and `retry` keys), so this header stays free of the worker's
// machinery.

#include <chrono>
#include <cstddef>

namespace hb {

// A sink's `retry` keys.
struct RetryPolicy {
  // First delay after a transient failure; doubles per attempt, with ±20%
  // jitter, up to max_backoff. A Retry-After from the destination wins when
  // longer. Default: 1s.
  std::chrono::milliseconds initial_backoff{std::chrono::seconds(1)};
  // Longest delay between two attempts. Default: 5m.
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
  // Attempts before an event is dead-lettered; 0 = unlimited (max_age
  // decides). Default: 0.
  int max_attempts = 0;
  // Age after which an undelivered event is dead-lettered, counted from
  // when it entered the sink's queue (or its spool: the time is stored with
  // the spooled event, so neither a restart nor a reload resets it), on a
  // timer: whether it was attempted or not, whatever Retry-After the
  // destination sent. Default: 24h, so a destination may be down for a day
  // without loss.
  std::chrono::milliseconds max_age{std::chrono::hours(24)};
};

struct SinkWorkerOptions {
  // Events waiting in memory for delivery, retries and the batch being
  // delivered excluded (a sink's queue.capacity). Past it they wait in the
  // spool (state.dir), or are dead-lettered at once without one.
  // Default: 10000.
  std::size_t queue_capacity = 10000;
  RetryPolicy retry;
};

}  // namespace hb

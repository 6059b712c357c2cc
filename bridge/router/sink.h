#pragma once

// The one extension point for destinations of health events (docs/adding-a-sink.md).
// Sinks classify failures; the router owns queues, retries, backoff and the
// dead-letter file, so there is one delivery mechanism, not one per sink.

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bridge/model/event.h"

namespace hb {

// Events are immutable once published and shared by every sink they route to.
using EventPtr = std::shared_ptr<const Event>;

struct DeliveryResult {
  enum class Kind {
    kOk,      // acknowledged by the destination
    kRetry,   // transient (network, 5xx, 429, broker down): try again later
    kReject,  // permanent (4xx, too large, ...): dead-letter it
  };
  Kind kind = Kind::kOk;
  // What went wrong, for logs and the dead-letter file; never a secret.
  std::string error;
  // The destination asked for this delay (HTTP Retry-After).
  std::optional<std::chrono::milliseconds> retry_after;

  static DeliveryResult Ok() { return {}; }
  static DeliveryResult Retry(std::string error,
                              std::optional<std::chrono::milliseconds> after = std::nullopt) {
    return {Kind::kRetry, std::move(error), after};
  }
  static DeliveryResult Reject(std::string error) { return {Kind::kReject, std::move(error), {}}; }
};

// A destination for health events. Deliver() and Shutdown() are called from
// the sink's own worker thread only; implementations need not be
// thread-safe, except for Interrupt().
class Sink {
 public:
  virtual ~Sink() = default;

  // The configured sink name (unique), used in logs and metric labels.
  virtual std::string_view Name() const = 0;

  // Delivers `events` and sets results[i] for events[i] (same size). Never
  // throws. A sink that can pipeline (Kafka) sends all before waiting for
  // the acknowledgements; one that cannot sends them one by one. The router
  // never puts two events of one instance in the same call, so per-instance
  // order holds whatever the results are.
  virtual void Deliver(std::span<const EventPtr> events,
                       std::span<DeliveryResult> results) noexcept = 0;

  // How many events one Deliver() call may take. Default: 1.
  virtual std::size_t MaxBatch() const { return 1; }

  // Whether the sink holds state (metrics, alerts) and so wants silent
  // events: notification sinks never get them. Silent events restate the
  // engine's state rather than report a change; such a sink must apply them
  // idempotently (set, never count). It gets:
  // - during the initial sync, every service's state: its first answer's
  //   events without saved state; with saved state (or initial_events),
  //   after that answer's reconciled changes, the service's part of the view
  //   (notification sinks get only the reconciled changes);
  // - the engine's whole current view (TransitionEngine::View(): one
  //   instance.up or instance.down per instance with its status, one
  //   service.up or service.down per service, one instance.deregistered per
  //   recently departed instance, its `time` the departure) when a reload
  //   adds, renames or rebuilds it (that sink only);
  // and readiness, or the reload, waits until it has attempted the view's
  // last event. Default: false.
  virtual bool WantsSilentEvents() const { return false; }

  // Flushes what is in flight within `timeout`; true when nothing was left.
  // Called when the sink stops for good, is removed or is replaced by a
  // rebuilt one: state it exported elsewhere (metric series) goes here, not
  // in the destructor, which may run later, after its successor started.
  virtual bool Shutdown(std::chrono::milliseconds timeout) noexcept = 0;

  // Whether the destination can be reached at all, asked once on the
  // sink's own thread before its first delivery: "" when it can (or the
  // sink cannot tell without delivering), else why not, naming the target
  // (never a secret). Must not deliver anything, and must return soon after
  // Interrupt(). Shown in the log and on /v1/sinks until the first delivery
  // attempt. Default: "".
  virtual std::string Probe() noexcept { return ""; }

  // The one call from another thread: shutdown's grace period is over, so a
  // Deliver() in progress should return soon, with what it could not finish
  // as kRetry (the router dead-letters those). Later Deliver() calls may
  // fail at once. Default: nothing (the sink's own timeouts bound Deliver()).
  virtual void Interrupt() noexcept {}
};

using SinkPtr = std::unique_ptr<Sink>;

}  // namespace hb

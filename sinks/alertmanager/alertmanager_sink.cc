#include "sinks/alertmanager/alertmanager_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hb {
namespace {

using Kind = DeliveryResult::Kind;

// One result for a post from the answers of every Alertmanager: delivered
// when one accepted it; permanent only when every answer was permanent.
DeliveryResult Combine(const std::vector<DeliveryResult>& answers) {
  std::string errors;
  bool all_permanent = true;
  std::optional<std::chrono::milliseconds> retry_after;
  for (const DeliveryResult& answer : answers) {
    if (answer.kind == Kind::kOk) return DeliveryResult::Ok();
    if (!errors.empty()) errors += "; ";
    errors += answer.error;
    all_permanent = all_permanent && answer.kind == Kind::kReject;
    if (answer.retry_after) {
      retry_after = std::max(retry_after.value_or(*answer.retry_after), *answer.retry_after);
    }
  }
  if (all_permanent) return DeliveryResult::Reject(std::move(errors));
  return DeliveryResult::Retry(std::move(errors), retry_after);
}

}  // namespace

AlertmanagerSink::AlertmanagerSink(PassKey, std::string name, AlertmanagerSinkSettings settings,
                                   std::unique_ptr<AlertmanagerClient> client, const Clock& clock,
                                   prometheus::Registry* registry)
    : name_(std::move(name)),
      settings_(std::move(settings)),
      clock_(clock),
      client_(std::move(client)) {
  if (registry != nullptr) {
    auto& posts = prometheus::BuildCounter()
                      .Name("health_bridge_alertmanager_posts_total")
                      .Help(
                          "Posts of alerts to each Alertmanager by outcome (ok, failed); an "
                          "event counts as delivered once one Alertmanager took it.")
                      .Register(*registry);
    for (std::size_t i = 0; i < client_->size(); ++i) {
      const std::string& alertmanager = client_->Describe(i);
      post_counters_.push_back(
          {&posts.Add({{"sink", name_}, {"alertmanager", alertmanager}, {"outcome", "ok"}}),
           &posts.Add({{"sink", name_}, {"alertmanager", alertmanager}, {"outcome", "failed"}})});
    }
    firing_gauge_ = &prometheus::BuildGauge()
                         .Name("health_bridge_alertmanager_firing_alerts")
                         .Help("Alerts the sink keeps firing (posted again every resend_interval).")
                         .Register(*registry)
                         .Add({{"sink", name_}});
    firing_gauge_->Set(0);
  }
  resender_ = std::thread([this] { ResendLoop(); });
}

StatusOr<std::unique_ptr<AlertmanagerSink>> AlertmanagerSink::Create(
    std::string name, const AlertmanagerSinkSettings& settings, const Clock& clock,
    prometheus::Registry* registry) {
  if (settings.urls.empty()) return Status::InvalidArgument("sink " + name + ": no urls");
  auto client = AlertmanagerClient::Create(settings, clock);
  if (!client.ok()) return Status::Internal("sink " + name + ": " + client.status().ToString());
  return std::make_unique<AlertmanagerSink>(PassKey{}, std::move(name), settings,
                                            std::move(client).value(), clock, registry);
}

AlertmanagerSink::~AlertmanagerSink() { StopResending(); }

void AlertmanagerSink::StopResending() {
  {
    MutexLock lock(&mutex_);
    if (!resender_.joinable()) return;
    stopping_ = true;
  }
  wake_.SignalAll();
  // A resend in progress would otherwise hold the stop for a whole timeout.
  InterruptClient();
  resender_.join();
}

bool AlertmanagerSink::Shutdown(std::chrono::milliseconds) noexcept {
  StopResending();
  return true;
}

void AlertmanagerSink::Interrupt() noexcept { InterruptClient(); }

std::optional<AlertmanagerSink::Update> AlertmanagerSink::PlanDown(const std::string& key,
                                                                   Alert alert, bool silent) const {
  Update update{key, {}, {}};
  const auto known = book_.find(key);
  if (known != book_.end() && known->second.firing()) {
    if (known->second.labels == alert.labels) {
      // Already firing: a silent event restates it, which the resend does.
      if (silent) return std::nullopt;
      alert.starts_at = std::min(alert.starts_at, known->second.starts_at);
    } else {
      // Another alert of this instance (another reason) still fires: the
      // event says it is over.
      Alert resolved = known->second;
      resolved.resolved_at = alert.starts_at;
      update.posts.push_back(std::move(resolved));
    }
  }
  update.posts.push_back(alert);
  update.remembered = std::move(alert);
  return update;
}

std::optional<AlertmanagerSink::Update> AlertmanagerSink::PlanResolve(const std::string& key,
                                                                      const Event& event,
                                                                      WallTime now) const {
  Alert alert;
  const auto known = book_.find(key);
  if (known != book_.end()) {
    if (!known->second.firing()) return std::nullopt;
    alert = known->second;
  } else {
    // Never resolve for a silent event what this sink did not fire: at start
    // that would be one post per healthy instance.
    if (event.silent) return std::nullopt;
    if (event.IsInstanceEvent()) {
      // A previous run of the bridge fired it (the engine saw the instance
      // down); the labels follow from the event, down to the reason.
      auto reason = PreviousDownReason(event);
      // `health-bridge test-sink` checks the path to Alertmanager with an
      // instance.up of a marked test instance: a resolved alert exercises
      // it without notifying anyone.
      const auto test = event.meta.find("health_bridge_test");
      if (!reason && test != event.meta.end() && test->second == "true") {
        reason = DownReason::kCritical;
      }
      if (!reason) return std::nullopt;
      alert = InstanceAlert(event, *reason, settings_);
    } else {
      alert = ServiceAlert(event, settings_);
    }
    alert.starts_at = now;
  }
  alert.resolved_at = now;
  return Update{key, {alert}, alert};
}

std::optional<AlertmanagerSink::Update> AlertmanagerSink::PlanStatusChange(
    const std::string& key, const Event& event) const {
  const auto known = book_.find(key);
  if (event.silent || known == book_.end() || !known->second.firing()) return std::nullopt;
  // The labels (the alert's identity, with the reason it went down) stay;
  // the annotations tell the new status and checks.
  const auto label = known->second.labels.find("reason");
  const DownReason reason = label == known->second.labels.end()
                                ? DownReason::kCritical
                                : ParseDownReason(label->second).value_or(DownReason::kCritical);
  Alert alert = known->second;
  alert.annotations = InstanceAlert(event, reason, settings_).annotations;
  if (alert.annotations == known->second.annotations) return std::nullopt;
  return Update{key, {alert}, alert};
}

std::optional<AlertmanagerSink::Update> AlertmanagerSink::PlanSilentStatus(const std::string& key,
                                                                           const Event& event,
                                                                           WallTime now) const {
  switch (*event.status) {
    case HealthStatus::kCritical:
    case HealthStatus::kMaintenance: {
      const auto known = book_.find(key);
      // Firing already, whatever its reason: the resend keeps it so.
      if (known != book_.end() && known->second.firing()) return std::nullopt;
      const DownReason reason = *event.status == HealthStatus::kMaintenance
                                    ? DownReason::kMaintenance
                                    : DownReason::kCritical;
      Alert alert = InstanceAlert(event, reason, settings_);
      alert.starts_at = event.time == WallTime{} ? now : std::min(event.time, now);
      return PlanDown(key, std::move(alert), /*silent=*/true);
    }
    case HealthStatus::kPassing:
      return PlanResolve(key, event, now);
    case HealthStatus::kWarning:
      // Up or down as watch.up_statuses says, which the sink does not know:
      // instance.up or instance.down tells it.
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<AlertmanagerSink::Update> AlertmanagerSink::Plan(const Event& event,
                                                               WallTime now) const {
  const std::string key = AlertKey(event);
  const bool restates_status = event.type == EventType::kInstanceRegistered ||
                               event.type == EventType::kInstanceStatusChanged;
  if (event.silent && restates_status && event.status) return PlanSilentStatus(key, event, now);
  switch (event.type) {
    case EventType::kInstanceDown: {
      const DownReason reason = event.reason.value_or(DownReason::kCritical);
      if (reason == DownReason::kDeregistered && !settings_.alert_on_deregistration) {
        return std::nullopt;
      }
      Alert alert = InstanceAlert(event, reason, settings_);
      alert.starts_at = event.time == WallTime{} ? now : std::min(event.time, now);
      return PlanDown(key, std::move(alert), event.silent);
    }
    case EventType::kServiceDown: {
      Alert alert = ServiceAlert(event, settings_);
      alert.starts_at = event.time == WallTime{} ? now : std::min(event.time, now);
      return PlanDown(key, std::move(alert), event.silent);
    }
    case EventType::kInstanceUp:
    case EventType::kInstanceDeregistered:
    case EventType::kServiceUp:
      return PlanResolve(key, event, now);
    case EventType::kInstanceStatusChanged:
      return PlanStatusChange(key, event);
    case EventType::kInstanceRegistered:
      // A new instance that starts down never was up: no alert, as no
      // instance.down follows for it. (A silent one restates the view: above.)
      return std::nullopt;
  }
  return std::nullopt;
}

DeliveryResult AlertmanagerSink::Post(std::span<const Update* const> updates, WallTime now) {
  std::vector<const Alert*> alerts;
  for (const Update* update : updates) {
    for (const Alert& alert : update->posts) alerts.push_back(&alert);
  }
  const std::string body = AlertsJson(alerts, now + settings_.expire_after);
  const std::vector<DeliveryResult> answers = client_->PostToAll(body);
  CountPosts(answers, {});
  DeliveryResult result = Combine(answers);
  if (result.kind == Kind::kOk) {
    for (std::size_t i = 0; i < answers.size(); ++i) {
      if (answers[i].kind != Kind::kOk) {
        spdlog::warn("sink {}: {} (it gets the alerts at the next resend)", name_,
                     answers[i].error);
      }
    }
  }
  return result;
}

void AlertmanagerSink::Deliver(std::span<const EventPtr> events,
                               std::span<DeliveryResult> results) noexcept {
  // Tells a resend round in progress to let this delivery in (Resend()).
  deliveries_waiting_.fetch_add(1);
  bool counted = true;
  try {
    MutexLock lock(&mutex_);
    deliveries_waiting_.fetch_sub(1);
    counted = false;
    const WallTime now = clock_.WallNow();
    std::vector<std::pair<std::size_t, Update>> updates;
    for (std::size_t i = 0; i < events.size(); ++i) {
      results[i] = DeliveryResult::Ok();
      if (auto update = Plan(*events[i], now)) updates.emplace_back(i, std::move(*update));
    }
    if (updates.empty()) return;

    std::vector<const Update*> all;
    all.reserve(updates.size());
    for (const auto& [index, update] : updates) all.push_back(&update);
    DeliveryResult result = Post(all, now);
    std::vector<DeliveryResult> outcomes(updates.size(), result);
    if (result.kind == Kind::kReject && updates.size() > 1) {
      // Alertmanager refused something in the batch: each alone, so one
      // alert it refuses does not take the others with it.
      for (std::size_t u = 0; u < updates.size(); ++u) {
        const Update* one[] = {&updates[u].second};
        outcomes[u] = Post(one, now);
      }
    }
    for (std::size_t u = 0; u < updates.size(); ++u) {
      auto& [index, update] = updates[u];
      results[index] = outcomes[u];
      if (outcomes[u].kind == Kind::kOk) Remember(update.key, std::move(update.remembered));
    }
  } catch (const std::exception& error) {
    for (auto& result : results) {
      if (result.kind == Kind::kOk) result = DeliveryResult::Retry(error.what());
    }
  }
  if (counted) deliveries_waiting_.fetch_sub(1);
  wake_.SignalAll();
}

void AlertmanagerSink::Resend() {
  const WallTime pruned_at = clock_.WallNow();
  std::erase_if(book_, [&](const auto& entry) {
    return !entry.second.firing() && *entry.second.resolved_at + kResolvedRetention < pruned_at;
  });
  if (book_.empty()) return;
  std::vector<std::string> keys;
  keys.reserve(book_.size());
  for (const auto& [key, alert] : book_) keys.push_back(key);
  // An Alertmanager that failed once in this round is not tried again
  // until the next: a dead one costs one timeout per round, not one per post.
  std::vector<bool> failed(client_->size(), false);
  std::vector<const Alert*> alerts;
  for (std::size_t start = 0; start < keys.size(); start += kMaxAlertsPerPost) {
    if (start > 0) {
      // A delivery waiting for the lock goes first: a round over many
      // alerts must not hold new events back for its whole length. Each
      // post is built from the book as it is then, so it never undoes a
      // resolve delivered in between.
      while (deliveries_waiting_.load() != 0 && !stopping_) wake_.Wait(&mutex_);
      if (stopping_) return;
    }
    if (std::all_of(failed.begin(), failed.end(), [](bool f) { return f; })) break;
    alerts.clear();
    const std::size_t end = std::min(keys.size(), start + kMaxAlertsPerPost);
    for (std::size_t k = start; k < end; ++k) {
      if (const auto it = book_.find(keys[k]); it != book_.end()) alerts.push_back(&it->second);
    }
    if (alerts.empty()) continue;
    const std::string body = AlertsJson(alerts, clock_.WallNow() + settings_.expire_after);
    const std::vector<DeliveryResult> answers = client_->PostToAll(body, failed);
    CountPosts(answers, failed);
    for (std::size_t i = 0; i < answers.size(); ++i) {
      if (failed[i] || answers[i].kind == Kind::kOk) continue;
      failed[i] = true;
      spdlog::warn("sink {}: resending {} alerts: {}", name_, keys.size(), answers[i].error);
    }
  }
}

void AlertmanagerSink::CountPosts(const std::vector<DeliveryResult>& answers,
                                  const std::vector<bool>& skipped) {
  if (post_counters_.empty()) return;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (!skipped.empty() && skipped[i]) continue;
    (answers[i].kind == Kind::kOk ? post_counters_[i].ok : post_counters_[i].failed)->Increment();
  }
}

void AlertmanagerSink::Remember(const std::string& key, Alert alert) {
  auto [it, added] = book_.try_emplace(key);
  if (!added && it->second.firing()) --firing_;
  if (alert.firing()) ++firing_;
  it->second = std::move(alert);
  if (firing_gauge_ != nullptr) firing_gauge_->Set(static_cast<double>(firing_));
}

void AlertmanagerSink::ResendNow() {
  MutexLock lock(&mutex_);
  Resend();
}

std::map<std::string, Alert> AlertmanagerSink::FiringAlerts() const {
  MutexLock lock(&mutex_);
  std::map<std::string, Alert> firing;
  for (const auto& [key, alert] : book_) {
    if (alert.firing()) firing.emplace(key, alert);
  }
  return firing;
}

void AlertmanagerSink::ResendLoop() {
  MutexLock lock(&mutex_);
  while (!stopping_) {
    const auto next = std::chrono::steady_clock::now() + settings_.resend_interval;
    while (!stopping_ && wake_.WaitUntil(&mutex_, next)) {
    }
    if (stopping_) break;
    try {
      Resend();
    } catch (const std::exception& error) {
      spdlog::warn("sink {}: resend failed: {}", name_, error.what());
    }
  }
}

StatusOr<SinkPtr> CreateAlertmanagerSink(const SinkConfig& config, const SinkContext& context) {
  const auto* settings = dynamic_cast<const AlertmanagerSinkSettings*>(config.settings.get());
  if (settings == nullptr) {
    return Status::Internal("sink " + config.name + ": not an alertmanager sink");
  }
  if (context.clock == nullptr) return Status::Internal("sink " + config.name + ": no clock");
  auto sink = AlertmanagerSink::Create(config.name, *settings, *context.clock, context.registry);
  if (!sink.ok()) return sink.status();
  return SinkPtr(std::move(sink).value());
}

}  // namespace hb

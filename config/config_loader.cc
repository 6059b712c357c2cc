#include "config/config_loader.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "bridge/cluster/cluster_names.h"
#include "bridge/common/glob.h"
#include "bridge/model/event.h"
#include "config/byte_size.h"
#include "config/duration.h"
#include "config/source_config.h"

namespace hb {
namespace {

// "instance.registered, instance.up, ...": every event type, for messages.
std::string EventTypeList() {
  std::string list;
  for (const EventType type : kAllEventTypes) {
    if (!list.empty()) list += ", ";
    list += ToString(type);
  }
  return list;
}

bool IsHttpUrl(std::string_view text) {
  return text.starts_with("http://") || text.starts_with("https://");
}

// host:port with a port from 0 to 65535.
bool IsHostPort(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  const std::string_view port = text.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
  return std::stoi(std::string(port)) <= 65535;
}

void ReadConsul(ConfigReader consul, ConsulConfig& config, const Environment& env) {
  ConsulClientOptions& out = config.client;
  out.address = consul.String("address", out.address);
  config.token = consul.String("token");
  out.token_file = consul.String("token_file");
  out.datacenter = consul.String("datacenter");
  out.wait = consul.Duration("wait_time", out.wait);
  out.stale = consul.Bool("stale", false);
  out.max_connections = static_cast<std::size_t>(
      consul.Int("max_connections", static_cast<std::int64_t>(out.max_connections), 3, 10'000));
  const std::uint64_t max_answer_size = consul.Bytes("max_answer_size", out.max_answer_bytes, 1024);
  if (max_answer_size > (std::uint64_t{4} << 30)) {
    consul.Error("max_answer_size",
                 "expected at most 4GiB, got " + std::to_string(max_answer_size));
  } else {
    out.max_answer_bytes = static_cast<std::size_t>(max_answer_size);
  }
  ConfigReader retry = consul.Section("retry");
  out.backoff_initial = retry.Duration("initial_backoff", out.backoff_initial);
  out.backoff_max = retry.Duration("max_backoff", out.backoff_max);
  if (out.backoff_initial < std::chrono::milliseconds(10)) {
    retry.Error("initial_backoff",
                "expected at least 10ms, got " + FormatDuration(out.backoff_initial));
  }
  if (out.backoff_max < out.backoff_initial) {
    retry.Error("max_backoff", "must not be shorter than initial_backoff (" +
                                   FormatDuration(out.backoff_initial) + "), got " +
                                   FormatDuration(out.backoff_max));
  } else if (out.backoff_max > std::chrono::minutes(10)) {
    retry.Error("max_backoff", "expected at most 10m, got " + FormatDuration(out.backoff_max));
  }
  retry.Finish();
  ConfigReader tls = consul.Section("tls");
  out.tls.ca_file = tls.String("ca_file");
  out.tls.ca_path = tls.String("ca_path");
  out.tls.cert_file = tls.String("cert_file");
  out.tls.key_file = tls.String("key_file");
  out.tls.server_name = tls.String("server_name");
  out.tls.insecure_skip_verify = tls.Bool("insecure_skip_verify", false);
  tls.Finish();

  // The consul CLI's environment variables override the file.
  auto apply = [&](const char* name, std::string_view key, std::string& field) {
    if (auto value = env(name)) {
      field = *value;
      consul.errors().AddFromEnvironment(consul.PathOf(key), name);
    }
  };
  apply("CONSUL_HTTP_ADDR", "address", out.address);
  apply("CONSUL_HTTP_TOKEN", "token", config.token);
  apply("CONSUL_HTTP_TOKEN_FILE", "token_file", out.token_file);
  apply("CONSUL_CACERT", "tls.ca_file", out.tls.ca_file);
  apply("CONSUL_CAPATH", "tls.ca_path", out.tls.ca_path);
  apply("CONSUL_CLIENT_CERT", "tls.cert_file", out.tls.cert_file);
  apply("CONSUL_CLIENT_KEY", "tls.key_file", out.tls.key_file);
  apply("CONSUL_TLS_SERVER_NAME", "tls.server_name", out.tls.server_name);
  // Booleans as Consul's Go client reads them (strconv.ParseBool); anything
  // else is an error, never silently "false".
  auto env_bool = [&](const char* name) -> std::optional<bool> {
    const auto value = env(name);
    if (!value) return std::nullopt;
    for (const char* yes : {"1", "t", "T", "TRUE", "true", "True"}) {
      if (*value == yes) return true;
    }
    for (const char* no : {"0", "f", "F", "FALSE", "false", "False"}) {
      if (*value == no) return false;
    }
    consul.errors().Add(name, "expected true or false (or 1, 0, t, f), got " + Quote(*value));
    return std::nullopt;
  };
  if (auto verify = env_bool("CONSUL_HTTP_SSL_VERIFY")) {
    out.tls.insecure_skip_verify = !*verify;
    consul.errors().AddFromEnvironment(consul.PathOf("tls.insecure_skip_verify"),
                                       "CONSUL_HTTP_SSL_VERIFY");
  }
  const bool ssl = env_bool("CONSUL_HTTP_SSL").value_or(false);
  if (const std::size_t scheme_end = out.address.find("://"); scheme_end != std::string::npos) {
    if (!IsHttpUrl(out.address)) {
      consul.Error("address", "the scheme must be http or https, got " +
                                  Quote(out.address.substr(0, scheme_end)) + " in " +
                                  Quote(RedactUrl(out.address)));
    }
  } else {
    out.address = (ssl ? "https://" : "http://") + out.address;
  }
  const std::string authority = out.address.substr(out.address.find("://") + 3);
  const std::string host_port = authority.substr(authority.rfind('@') + 1);
  if (IsHttpUrl(out.address) && (!IsHostPort(host_port) || host_port.front() == ':' ||
                                 host_port.find_first_of(" \t\r\n/?#") != std::string::npos)) {
    consul.Error("address",
                 "expected an http(s) URL or host:port, got " + Quote(RedactUrl(out.address)));
  }
  if (out.wait <= std::chrono::milliseconds(0) || out.wait > std::chrono::minutes(10)) {
    consul.Error("wait_time", "expected a duration from 1ms to 10m (Consul's limit), got " +
                                  FormatDuration(out.wait));
  }
  out.token = config.token;
  if (!out.token_file.empty()) {
    std::ifstream in(out.token_file);
    std::stringstream content;
    content << in.rdbuf();
    if (!in) {
      consul.Error("token_file", "cannot read " + Quote(out.token_file));
    } else {
      std::string token = content.str();
      token.erase(token.find_last_not_of(" \t\r\n") + 1);
      token.erase(0, token.find_first_not_of(" \t\r\n"));
      if (!token.empty()) out.token = token;
    }
  }
  consul.Finish();
}

void ReadWatch(ConfigReader watch, const ConsulConfig& consul, WatchConfig& out) {
  WatcherOptions& watcher = out.watcher;
  EngineOptions& engine = out.engine;
  ConfigReader services = watch.Section("services");
  watcher.services.include = services.StringList("include", watcher.services.include);
  watcher.services.exclude = services.StringList("exclude", watcher.services.exclude);
  watcher.services.tags = services.StringList("tags", {});
  services.Finish();

  if (watch.Has("up_statuses")) {
    engine.up_statuses.clear();
    for (const auto& text : watch.StringList("up_statuses", {})) {
      auto status = ParseHealthStatus(text);
      if (!status || *status == HealthStatus::kMaintenance) {
        watch.Error("up_statuses", "expected passing, warning or critical, got " + Quote(text));
      } else {
        engine.up_statuses.push_back(*status);
      }
    }
    if (engine.up_statuses.empty()) watch.Error("up_statuses", "must name at least one status");
  }
  ConfigReader dampening = watch.Section("dampening");
  engine.down_after = dampening.Duration("down_after", engine.down_after);
  engine.up_after = dampening.Duration("up_after", engine.up_after);
  dampening.Finish();
  engine.initial_events = watch.Bool("initial_events", false);
  watcher.unreachable_grace = watch.Duration("unreachable_grace", watcher.unreachable_grace);
  out.stall_timeout = watch.Duration("stall_timeout", out.stall_timeout);
  ReadSourceSettings(watch, watcher);
  // The heartbeat turns at most once a second: a shorter limit would fail
  // readiness on a healthy loop.
  if (out.stall_timeout < std::chrono::seconds(2)) {
    watch.Error("stall_timeout", "must be at least 2s, got " + FormatDuration(out.stall_timeout));
  }
  watch.Finish();
  // The watch reads the datacenter the client asks, and its first request
  // (/v1/agent/self) backs off like every other one.
  watcher.datacenter = consul.client.datacenter;
  watcher.agent_retry_initial = consul.client.backoff_initial;
  watcher.agent_retry_max = consul.client.backoff_max;
}

void ReadEvents(ConfigReader events, EventsConfig& out) {
  out.type_prefix = events.String("type_prefix", out.type_prefix);
  out.source = events.String("source");
  static const std::regex kPrefix("[a-z0-9_]+(\\.[a-z0-9_]+)*");
  if (!std::regex_match(out.type_prefix, kPrefix)) {
    events.Error("type_prefix",
                 "expected dot-separated [a-z0-9_] segments such as "
                 "\"com.example.health\", got " +
                     Quote(out.type_prefix));
  }
  events.Finish();
}

void ReadSink(ConfigReader sink, const SinkParsers& parsers, SinkConfig& out,
              std::set<std::string>& names) {
  out.name = sink.String("name");
  out.type = sink.String("type");
  static const std::regex kName("[a-z0-9_-]+");
  if (out.name.empty()) {
    sink.Error("name", "required");
  } else if (!std::regex_match(out.name, kName)) {
    sink.Error("name", "expected lowercase letters, digits, - and _, got " + Quote(out.name));
  } else if (!names.insert(out.name).second) {
    sink.Error("name", "duplicate sink name " + Quote(out.name));
  }

  out.filter.events = sink.StringList("events", out.filter.events);
  for (const auto& pattern : out.filter.events) {
    const bool matches_any =
        std::any_of(std::begin(kAllEventTypes), std::end(kAllEventTypes),
                    [&](EventType type) { return GlobMatch(pattern, ToString(type)); });
    if (!matches_any) {
      sink.Error("events", Quote(pattern) + " matches no event type (" + EventTypeList() + ")");
    }
  }
  out.filter.services = sink.StringList("services", out.filter.services);
  out.filter.tags = sink.StringList("tags", {});
  out.dead_letter_file = sink.String("dead_letter_file");
  out.dead_letter_max_bytes =
      sink.Bytes("dead_letter_max_bytes", out.dead_letter_max_bytes, std::uint64_t{64} << 10);

  ConfigReader queue = sink.Section("queue");
  out.worker.queue_capacity = static_cast<std::size_t>(
      queue.Int("capacity", static_cast<std::int64_t>(out.worker.queue_capacity), 1, 10'000'000));
  // The router never waits for a sink any more: a full queue overflows to
  // the spool, or dead-letters at once without one. An old file that asks
  // for the blocking behaviour is told so rather than silently changed.
  const std::string overflow = queue.String("overflow", "spool");
  if (overflow == "block") {
    queue.Error("overflow",
                "block was removed: a full queue no longer blocks the watch; it overflows to "
                "the spool (state.dir) or dead-letters at once. Use spool or remove the key");
  } else if (overflow != "spool") {
    queue.Error("overflow", "expected spool, got " + Quote(overflow));
  }
  if (queue.Has("block_timeout")) {
    queue.Error("block_timeout",
                "was removed: a full queue no longer blocks the watch (it overflows to the "
                "spool, or dead-letters at once); remove the key");
  }
  queue.Finish();

  ConfigReader spool = sink.Section("spool");
  // One segment's worth at least, or nothing would ever fit.
  out.spool_max_bytes = spool.Bytes("max_bytes", out.spool_max_bytes, std::uint64_t{1} << 20);
  spool.Finish();

  ConfigReader retry = sink.Section("retry");
  out.worker.retry.initial_backoff =
      retry.Duration("initial_backoff", out.worker.retry.initial_backoff);
  out.worker.retry.max_backoff = retry.Duration("max_backoff", out.worker.retry.max_backoff);
  out.worker.retry.max_attempts =
      static_cast<int>(retry.Int("max_attempts", out.worker.retry.max_attempts, 0, 1'000'000));
  out.worker.retry.max_age = retry.Duration("max_age", out.worker.retry.max_age);
  if (out.worker.retry.initial_backoff <= std::chrono::milliseconds(0)) {
    retry.Error("initial_backoff", "must be greater than 0");
  }
  if (out.worker.retry.max_backoff < out.worker.retry.initial_backoff) {
    retry.Error("max_backoff", "must not be shorter than initial_backoff");
  }
  if (out.worker.retry.max_age <= std::chrono::milliseconds(0))
    retry.Error("max_age", "must be greater than 0");
  retry.Finish();

  if (out.type.empty()) {
    sink.Error("type", "required");
  } else if (auto parser = parsers.find(out.type); parser == parsers.end()) {
    std::string known;
    for (const auto& [type, unused] : parsers) known += (known.empty() ? "" : ", ") + type;
    sink.Error("type", "unknown sink type " + Quote(out.type) + " (known: " + known + ")");
  } else {
    out.settings = parser->second(sink);
  }
  // Unknown-key checks only make sense once the type's own keys were read.
  if (out.settings) sink.Finish();
}

void ReadServer(ConfigReader server, ServerConfig& out) {
  out.listen = server.String("listen", out.listen);
  out.default_metrics_sink = server.Bool("default_metrics_sink", out.default_metrics_sink);
  if (!IsHostPort(out.listen)) {
    server.Error("listen", "expected host:port such as 0.0.0.0:9464, got " + Quote(out.listen));
  }
  out.web_config_file = server.String("web_config_file");
  out.max_connections = server.Int("max_connections", out.max_connections, 8, 65536);
  ConfigReader instances = server.Section("instances");
  out.instances = instances.Bool("enabled", out.instances);
  out.instances_meta = instances.StringList("meta", {});
  instances.Finish();
  server.Finish();
}

void ReadState(ConfigReader state, StateConfig& out) {
  out.dir = state.String("dir");
  out.shutdown_timeout = state.Duration("shutdown_timeout", out.shutdown_timeout);
  out.save_interval = state.Duration("save_interval", out.save_interval);
  if (out.save_interval <= std::chrono::milliseconds(0)) {
    state.Error("save_interval", "must be greater than 0");
  }
  state.Finish();
}

void ReadCluster(ConfigReader cluster, ClusterConfig& out) {
  out.enabled = cluster.Bool("enabled", out.enabled);
  out.prefix = cluster.String("prefix", out.prefix);
  out.session_ttl = cluster.Duration("session_ttl", out.session_ttl);
  out.lock_delay = cluster.Duration("lock_delay", out.lock_delay);
  out.member_id = cluster.String("member_id");
  if (std::string why = ValidateClusterPrefix(out.prefix); !why.empty()) {
    cluster.Error("prefix", why + ", got " + Quote(out.prefix));
  }
  if (out.session_ttl < std::chrono::seconds(1) || out.session_ttl > std::chrono::hours(24)) {
    cluster.Error("session_ttl", "must be between 1s and 24h (Consul's own range is 10s to 24h)");
  }
  if (out.lock_delay > std::chrono::seconds(60)) {
    cluster.Error("lock_delay", "must be at most 60s (Consul cuts longer ones to 60s)");
  }
  if (!out.member_id.empty()) {
    if (std::string why = ValidateMemberId(out.member_id); !why.empty()) {
      cluster.Error("member_id", why + ", got " + Quote(out.member_id));
    }
  }
  cluster.Finish();
}

void ReadLog(ConfigReader log, LogConfig& out) {
  out.level = log.String("level", out.level);
  out.format = log.String("format", out.format);
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.contains(out.level)) {
    log.Error("level", "expected trace, debug, info, warn or error, got " + Quote(out.level));
  }
  if (out.format != "json" && out.format != "text") {
    log.Error("format", "expected json or text, got " + Quote(out.format));
  }
  log.Finish();
}

// The instance gauges on every config: a metrics sink over every watched
// service, unless the config has its own (with its filters) or turned it off.
void AddDefaultMetricsSink(BridgeConfig& config, const SinkParsers& parsers, ConfigErrors& errors,
                           const Environment& env) {
  const auto parser = parsers.find("metrics");
  if (parser == parsers.end()) return;
  auto named = [&](std::string_view name) {
    return std::any_of(config.sinks.begin(), config.sinks.end(),
                       [&](const SinkConfig& sink) { return sink.name == name; });
  };
  for (const SinkConfig& sink : config.sinks) {
    if (sink.type == "metrics") return;
  }
  SinkConfig sink;
  sink.name = named("metrics") ? "default-metrics" : "metrics";
  sink.type = "metrics";
  ConfigReader defaults(YAML::Node(YAML::NodeType::Map), "server.default_metrics_sink", errors,
                        env);
  sink.settings = parser->second(defaults);
  config.sinks.push_back(std::move(sink));
}

}  // namespace

LoadResult LoadConfigString(std::string_view yaml, const SinkParsers& sinks,
                            const Environment& env) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& error) {
    result.errors.push_back("YAML syntax error at line " + std::to_string(error.mark.line + 1) +
                            ", column " + std::to_string(error.mark.column + 1) + ": " + error.msg);
    return result;
  }
  ConfigErrors errors;
  ConfigReader top(root, "", errors, env);
  BridgeConfig config;
  ReadConsul(top.Section("consul"), config.consul, env);
  ReadWatch(top.Section("watch"), config.consul, config.watch);
  ReadEvents(top.Section("events"), config.events);
  const YAML::Node sink_list = top.Raw("sinks");
  if (sink_list.IsDefined() && !sink_list.IsNull() && !sink_list.IsSequence()) {
    errors.Add("sinks", "expected a list of sinks");
  } else if (sink_list.IsSequence()) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < sink_list.size(); ++i) {
      SinkConfig sink;
      ReadSink(ConfigReader(sink_list[i], "sinks[" + std::to_string(i) + "]", errors, env), sinks,
               sink, names);
      config.sinks.push_back(std::move(sink));
    }
  }
  ReadServer(top.Section("server"), config.server);
  ReadState(top.Section("state"), config.state);
  ReadLog(top.Section("log"), config.log);
  ReadCluster(top.Section("cluster"), config.cluster);
  top.Finish();
  CheckSourceBudget(config.watch.watcher, static_cast<int>(config.consul.client.max_connections),
                    errors);
  // A replica owns services by name and hands over their state by name: a
  // name in two sources would be one ownership and one handover state.
  if (config.cluster.enabled && !config.watch.watcher.sources.empty()) {
    errors.Add("cluster.enabled",
               "cannot be combined with watch.sources yet (replicas own and hand over "
               "services by name, which several sources may share): run one bridge "
               "deployment per source, or one replica");
  }
  if (config.server.default_metrics_sink) AddDefaultMetricsSink(config, sinks, errors, env);

  if (!errors.empty()) {
    result.errors = errors.messages();
    return result;
  }
  config.from_environment = errors.from_environment();
  result.config = std::move(config);
  return result;
}

namespace {

// Whitespace, comments and document markers only.
bool IsEmptyDocument(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;
    line.remove_prefix(first);
    if (line.starts_with("---") || line.starts_with("...")) line.remove_prefix(3);
    const std::size_t content = line.find_first_not_of(" \t\r");
    if (content == std::string_view::npos || line[content] == '#') continue;
    return false;
  }
  return true;
}

}  // namespace

LoadResult LoadConfigFile(const std::string& path, const SinkParsers& sinks,
                          const Environment& env) {
  std::ifstream in(path);
  if (!in) {
    LoadResult result;
    result.errors.push_back(path + ": cannot read the config file");
    return result;
  }
  std::stringstream text;
  text << in.rdbuf();
  if (IsEmptyDocument(text.str())) {
    // A config tool that truncated the file would otherwise turn into "no
    // sinks": on SIGHUP that removed every sink and its undelivered events.
    LoadResult result;
    result.errors.push_back(path +
                            ": the file holds no YAML document (empty, or only comments); "
                            "write {} to run on the defaults");
    return result;
  }
  return LoadConfigString(text.str(), sinks, env);
}

namespace {

void EmitList(YAML::Emitter& out, const char* key, const std::vector<std::string>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << values;
}

std::string Secret(const std::string& value, bool mask) {
  return mask && !value.empty() ? kMasked : value;
}

void EmitSink(YAML::Emitter& out, const SinkConfig& sink, bool mask_secrets) {
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << sink.name;
  out << YAML::Key << "type" << YAML::Value << sink.type;
  EmitList(out, "events", sink.filter.events);
  EmitList(out, "services", sink.filter.services);
  EmitList(out, "tags", sink.filter.tags);
  out << YAML::Key << "dead_letter_file" << YAML::Value << sink.dead_letter_file;
  out << YAML::Key << "dead_letter_max_bytes" << YAML::Value
      << FormatByteSize(sink.dead_letter_max_bytes);
  out << YAML::Key << "queue" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "capacity" << YAML::Value << sink.worker.queue_capacity;
  out << YAML::Key << "overflow" << YAML::Value << "spool";
  out << YAML::EndMap;
  out << YAML::Key << "spool" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_bytes" << YAML::Value << FormatByteSize(sink.spool_max_bytes);
  out << YAML::EndMap;
  out << YAML::Key << "retry" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "initial_backoff" << YAML::Value
      << FormatDuration(sink.worker.retry.initial_backoff);
  out << YAML::Key << "max_backoff" << YAML::Value << FormatDuration(sink.worker.retry.max_backoff);
  out << YAML::Key << "max_attempts" << YAML::Value << sink.worker.retry.max_attempts;
  out << YAML::Key << "max_age" << YAML::Value << FormatDuration(sink.worker.retry.max_age);
  out << YAML::EndMap;
  if (sink.settings) sink.settings->Emit(out, mask_secrets);
  out << YAML::EndMap;
}

}  // namespace

std::string FormatSinkConfig(const SinkConfig& sink, bool mask_secrets) {
  YAML::Emitter out;
  EmitSink(out, sink, mask_secrets);
  return out.c_str();
}

std::string FormatEffectiveConfig(const BridgeConfig& config, bool mask_secrets) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  const ConsulClientOptions& consul = config.consul.client;
  out << YAML::Key << "consul" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "address" << YAML::Value
      << (mask_secrets ? RedactUrl(consul.address) : consul.address);
  out << YAML::Key << "token" << YAML::Value << Secret(config.consul.token, mask_secrets);
  out << YAML::Key << "token_file" << YAML::Value << consul.token_file;
  out << YAML::Key << "datacenter" << YAML::Value << consul.datacenter;
  out << YAML::Key << "wait_time" << YAML::Value << FormatDuration(consul.wait);
  out << YAML::Key << "stale" << YAML::Value << consul.stale;
  out << YAML::Key << "max_connections" << YAML::Value << consul.max_connections;
  out << YAML::Key << "max_answer_size" << YAML::Value << consul.max_answer_bytes;
  out << YAML::Key << "retry" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "initial_backoff" << YAML::Value << FormatDuration(consul.backoff_initial);
  out << YAML::Key << "max_backoff" << YAML::Value << FormatDuration(consul.backoff_max);
  out << YAML::EndMap;
  out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "ca_file" << YAML::Value << consul.tls.ca_file;
  out << YAML::Key << "ca_path" << YAML::Value << consul.tls.ca_path;
  out << YAML::Key << "cert_file" << YAML::Value << consul.tls.cert_file;
  out << YAML::Key << "key_file" << YAML::Value << consul.tls.key_file;
  out << YAML::Key << "server_name" << YAML::Value << consul.tls.server_name;
  out << YAML::Key << "insecure_skip_verify" << YAML::Value << consul.tls.insecure_skip_verify;
  out << YAML::EndMap << YAML::EndMap;

  const WatchConfig& watch = config.watch;
  out << YAML::Key << "watch" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "services" << YAML::Value << YAML::BeginMap;
  EmitList(out, "include", watch.watcher.services.include);
  EmitList(out, "exclude", watch.watcher.services.exclude);
  EmitList(out, "tags", watch.watcher.services.tags);
  out << YAML::EndMap;
  std::vector<std::string> up;
  up.reserve(watch.engine.up_statuses.size());
  for (auto status : watch.engine.up_statuses) up.emplace_back(ToString(status));
  EmitList(out, "up_statuses", up);
  out << YAML::Key << "dampening" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "down_after" << YAML::Value << FormatDuration(watch.engine.down_after);
  out << YAML::Key << "up_after" << YAML::Value << FormatDuration(watch.engine.up_after);
  out << YAML::EndMap;
  out << YAML::Key << "initial_events" << YAML::Value << watch.engine.initial_events;
  out << YAML::Key << "unreachable_grace" << YAML::Value
      << FormatDuration(watch.watcher.unreachable_grace);
  out << YAML::Key << "stall_timeout" << YAML::Value << FormatDuration(watch.stall_timeout);
  EmitSources(out, watch.watcher);
  out << YAML::EndMap;

  out << YAML::Key << "events" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type_prefix" << YAML::Value << config.events.type_prefix;
  out << YAML::Key << "source" << YAML::Value << config.events.source;
  out << YAML::EndMap;

  out << YAML::Key << "sinks" << YAML::Value << YAML::BeginSeq;
  for (const SinkConfig& sink : config.sinks) EmitSink(out, sink, mask_secrets);
  out << YAML::EndSeq;

  out << YAML::Key << "server" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << config.server.listen;
  out << YAML::Key << "web_config_file" << YAML::Value << config.server.web_config_file;
  out << YAML::Key << "max_connections" << YAML::Value << config.server.max_connections;
  out << YAML::Key << "instances" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "enabled" << YAML::Value << config.server.instances;
  EmitList(out, "meta", config.server.instances_meta);
  out << YAML::EndMap;
  out << YAML::Key << "default_metrics_sink" << YAML::Value << config.server.default_metrics_sink
      << YAML::EndMap;
  out << YAML::Key << "state" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dir" << YAML::Value << config.state.dir;
  out << YAML::Key << "shutdown_timeout" << YAML::Value
      << FormatDuration(config.state.shutdown_timeout);
  out << YAML::Key << "save_interval" << YAML::Value << FormatDuration(config.state.save_interval)
      << YAML::EndMap;
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "level" << YAML::Value << config.log.level;
  out << YAML::Key << "format" << YAML::Value << config.log.format << YAML::EndMap;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "enabled" << YAML::Value << config.cluster.enabled;
  out << YAML::Key << "prefix" << YAML::Value << config.cluster.prefix;
  out << YAML::Key << "session_ttl" << YAML::Value << FormatDuration(config.cluster.session_ttl);
  out << YAML::Key << "lock_delay" << YAML::Value << FormatDuration(config.cluster.lock_delay);
  out << YAML::Key << "member_id" << YAML::Value << config.cluster.member_id << YAML::EndMap;
  out << YAML::EndMap;
  std::string text = std::string(out.c_str()) + "\n";
  if (!config.from_environment.empty()) {
    text += "# from the environment:\n";
    for (const std::string& line : config.from_environment) text += "#   " + line + "\n";
  }
  return text;
}

}  // namespace hb

#include "bridge/model/cloud_event.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace hb {
namespace {

using nlohmann::json;

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// The CloudEvents source in two parts, so the serializer need not join them:
// the configured one, or "consul://<datacenter>".
std::array<std::string_view, 2> SourceParts(const Event& event, const CloudEventOptions& options) {
  if (options.source.empty()) return {"consul://", event.datacenter};
  return {options.source, ""};
}

// YYYY-MM-DDTHH:MM:SS.mmmZ, from std::chrono's calendar rather than
// gmtime_r + strftime + snprintf: this runs for every event each sink sends.
using Rfc3339Text = std::array<char, 24>;
Rfc3339Text Rfc3339(WallTime time) {
  // NOLINTNEXTLINE(google-build-using-namespace): calendar arithmetic, one function
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(time);
  const auto day = floor<days>(ms);
  const year_month_day date{day};
  const hh_mm_ss clock{ms - day};
  Rfc3339Text text{};
  auto put = [&](std::size_t at, long value, std::size_t digits) {
    for (std::size_t i = digits; i-- > 0; value /= 10)
      text[at + i] = static_cast<char>('0' + value % 10);
  };
  put(0, static_cast<int>(date.year()), 4);
  text[4] = '-';
  put(5, static_cast<unsigned>(date.month()), 2);
  text[7] = '-';
  put(8, static_cast<unsigned>(date.day()), 2);
  text[10] = 'T';
  put(11, clock.hours().count(), 2);
  text[13] = ':';
  put(14, clock.minutes().count(), 2);
  text[16] = ':';
  put(17, clock.seconds().count(), 2);
  text[19] = '.';
  put(20, clock.subseconds().count(), 3);
  text[23] = 'Z';
  return text;
}

}  // namespace

std::string FormatRfc3339(WallTime time) {
  const Rfc3339Text text = Rfc3339(time);
  return {text.data(), text.size()};
}

namespace {

// The one serializer of the format: both modes and every sink write through
// it, so a field is added in one place. It writes the text directly rather
// than building a document (nlohmann's tree of std::maps cost ~11 us per
// event, most of a sink's CPU). Members go sorted by name, the order the
// text has always had: it is canonical JSON, byte for byte what nlohmann's
// compact dump of it gives (a test holds that).
class CompactWriter {
 public:
  // Writes into `out` from its start, in the storage it already has.
  explicit CompactWriter(std::string& out) : out_(out) {
    out_.resize(std::max<std::size_t>(out_.capacity(), 1024));
  }

  void Finish() { out_.resize(size_); }

  void BeginObject() { Begin('{'); }
  void EndObject() { End('}'); }
  void BeginArray() { Begin('['); }
  void EndArray() { End(']'); }
  // Member names are literals: a fixed-size copy the compiler inlines.
  template <std::size_t kSize>
  void Key(const char (&name)[kSize]) {
    constexpr std::size_t kLength = kSize - 1;
    Separate();
    char* at = Room(kLength + 3);
    at[0] = '"';
    std::memcpy(at + 1, name, kLength);
    at[kLength + 1] = '"';
    at[kLength + 2] = ':';
    size_ += kLength + 3;
    after_key_ = true;
  }
  // Printable ASCII needs no escaping and is nearly every string here; the
  // rest (quotes, control characters, UTF-8, invalid UTF-8) goes through
  // nlohmann, so escaping and replacement stay exactly its own.
  void String(std::string_view text) {
    Separate();
    Quoted(text);
  }
  // The concatenation of `parts` as one string, without building it.
  void String(std::initializer_list<std::string_view> parts) {
    Separate();
    if (std::all_of(parts.begin(), parts.end(), IsPlain)) {
      Put('"');
      for (std::string_view part : parts) Put(part);
      Put('"');
      return;
    }
    std::string joined;
    for (std::string_view part : parts) joined += part;
    Quoted(joined);
  }
  // A member name from a table (plain ASCII, no escaping), in one write.
  void Key(std::string_view name) {
    Separate();
    char* at = Room(name.size() + 3);
    at[0] = '"';
    std::memcpy(at + 1, name.data(), name.size());
    at[name.size() + 1] = '"';
    at[name.size() + 2] = ':';
    size_ += name.size() + 3;
    after_key_ = true;
  }
  // A member name that may need escaping (a meta key).
  void QuotedKey(std::string_view name) {
    Separate();
    Quoted(name);
    Put(':');
    after_key_ = true;
  }
  template <typename Integer>
  void Number(Integer value) {
    std::array<char, 24> digits{};
    const char* end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
    Literal(std::string_view(digits.data(), end));
  }
  void Bool(bool value) { Literal(value ? "true" : "false"); }
  void Time(WallTime time) {
    const Rfc3339Text text = Rfc3339(time);
    Separate();
    Put('"');
    Put(std::string_view(text.data(), text.size()));
    Put('"');
  }
  void StatusOrNull(const std::optional<HealthStatus>& status) {
    if (status) {
      String(ToString(*status));
    } else {
      Literal("null");
    }
  }

 private:
  static bool IsPlain(std::string_view text) {
    // Eight bytes at a time (check outputs run to kilobytes): a byte is not
    // plain when its high bit is set, when it is below 0x20, or when it is
    // '"' or '\\' (a zero byte after XOR). Classic SWAR zero-byte tests.
    constexpr std::uint64_t kOnes = 0x0101010101010101;
    constexpr std::uint64_t kHigh = 0x8080808080808080;
    auto has_zero_byte = [](std::uint64_t word) { return (word - kOnes) & ~word & kHigh; };
    std::size_t i = 0;
    for (; i + 8 <= text.size(); i += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, text.data() + i, 8);
      const std::uint64_t below_space = (word - 0x20 * kOnes) & ~word & kHigh;
      if ((word & kHigh) != 0 || below_space != 0 || has_zero_byte(word ^ ('"' * kOnes)) != 0 ||
          has_zero_byte(word ^ ('\\' * kOnes)) != 0) {
        return false;
      }
    }
    // The rest, and most strings here (shorter than a word), by table.
    bool plain = true;
    for (; i < text.size(); ++i) plain &= kPlainByte[static_cast<unsigned char>(text[i])];
    return plain;
  }
  static constexpr std::array<bool, 256> kPlainByte = [] {
    std::array<bool, 256> table{};
    for (int byte = 0x20; byte < 0x80; ++byte) table[byte] = byte != '"' && byte != '\\';
    return table;
  }();
  void Quoted(std::string_view text) {
    if (IsPlain(text)) {
      Put('"');
      Put(text);
      Put('"');
    } else {
      Put(json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  void Literal(std::string_view text) {
    Separate();
    Put(text);
  }
  void Begin(char bracket) {
    Separate();
    Put(bracket);
    first_[++depth_] = true;
  }
  void End(char bracket) {
    Put(bracket);
    --depth_;
  }
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_[depth_]) Put(',');
    first_[depth_] = false;
  }
  // Writes through a cursor into storage sized ahead: std::string's own
  // appends are out-of-line calls, which were half the time per event.
  char* Room(std::size_t bytes) {
    if (size_ + bytes > out_.size()) [[unlikely]]
      Grow(bytes);
    return out_.data() + size_;
  }
  [[gnu::noinline]] void Grow(std::size_t bytes) {
    out_.resize(std::max(out_.size() * 2, size_ + bytes));
  }
  void Put(char c) {
    *Room(1) = c;
    ++size_;
  }
  void Put(std::string_view text) {
    std::memcpy(Room(text.size()), text.data(), text.size());
    size_ += text.size();
  }

  std::string& out_;
  std::size_t size_ = 0;
  std::array<bool, 8> first_{true};  // per nesting level: nothing written yet
  std::size_t depth_ = 0;
  bool after_key_ = false;
};

void WriteData(CompactWriter& w, const Event& event, const CloudEventOptions& options) {
  w.BeginObject();
  if (!event.IsInstanceEvent()) {
    w.Key("consul_index"), w.Number(event.consul_index);
    w.Key("datacenter"), w.String(event.datacenter);
    w.Key("event"), w.String(ToString(event.type));
    w.Key("instances_total"), w.Number(event.instances_total);
    w.Key("instances_up"), w.Number(event.instances_up);
    if (!event.scope.ns.empty()) w.Key("namespace"), w.String(event.scope.ns);
    if (!event.scope.partition.empty()) w.Key("partition"), w.String(event.scope.partition);
    if (!event.scope.peer.empty()) w.Key("peer"), w.String(event.scope.peer);
    w.Key("reconciled"), w.Bool(event.reconciled);
    w.Key("service"), w.String(event.service);
    w.EndObject();
    return;
  }
  w.Key("address"), w.String(event.address);
  w.Key("checks"), w.BeginArray();
  for (const Check& check : event.checks) {
    const std::string_view output = TruncateUtf8(check.output, options.max_check_output_bytes);
    w.BeginObject();
    w.Key("check_id"), w.String(check.id);
    w.Key("name"), w.String(check.name);
    w.Key("output"), w.String(output);
    if (output.size() < check.output.size()) w.Key("output_truncated"), w.Bool(true);
    w.Key("status"), w.String(ToString(check.status));
    w.EndObject();
  }
  w.EndArray();
  w.Key("consul_index"), w.Number(event.consul_index);
  w.Key("datacenter"), w.String(event.datacenter);
  w.Key("event"), w.String(ToString(event.type));
  w.Key("instance_id"), w.String(event.instance_id);
  w.Key("meta"), w.BeginObject();
  for (const auto& [name, value] : event.meta) w.QuotedKey(name), w.String(value);
  w.EndObject();
  if (!event.scope.ns.empty()) w.Key("namespace"), w.String(event.scope.ns);
  w.Key("node"), w.String(event.node);
  if (!event.scope.partition.empty()) w.Key("partition"), w.String(event.scope.partition);
  if (!event.scope.peer.empty()) w.Key("peer"), w.String(event.scope.peer);
  w.Key("port"), w.Number(event.port);
  w.Key("previous_status"), w.StatusOrNull(event.previous_status);
  if (event.reason) w.Key("reason"), w.String(ToString(*event.reason));
  w.Key("reconciled"), w.Bool(event.reconciled);
  w.Key("service"), w.String(event.service);
  w.Key("status"), w.StatusOrNull(event.status);
  w.Key("tags"), w.BeginArray();
  for (const auto& tag : event.tags) w.String(tag);
  w.EndArray();
  w.EndObject();
}

// The context attributes, in the order of the CloudEvents spec (binary
// mode's headers). Each one's value is written by WriteAttribute(), to the
// structured writer or to plain text.
enum class Attribute : std::uint8_t {
  kSpecversion,
  kId,
  kSource,
  kType,
  kSubject,
  kTime,
  kDatacontenttype,
  kPartitionkey,
  kHbepoch,  // only when the event has an owner's epoch (cluster mode)
};
constexpr std::array<std::string_view, 9> kAttributeNames = {
    "specversion",     "id",           "source", "type", "subject", "time",
    "datacontenttype", "partitionkey", "hbepoch"};

bool HasAttribute(Attribute attribute, const Event& event) {
  return attribute != Attribute::kHbepoch || event.epoch.has_value();
}

// Writes the value of `attribute` (HasAttribute) through `out`, which has
// String(text), String({parts...}) (their concatenation), Time(time) and
// Number(n).
template <typename Out>
void WriteAttribute(Out& out, Attribute attribute, const Event& event,
                    const CloudEventOptions& options) {
  switch (attribute) {
    case Attribute::kSpecversion:
      out.String("1.0");
      return;
    case Attribute::kId:
      out.String(event.id);
      return;
    case Attribute::kSource: {
      if (options.source.empty() && !event.scope.IsDefault()) {
        out.String(CloudEventSource(event.datacenter, event.scope));
        return;
      }
      const auto [source, source_rest] = SourceParts(event, options);
      out.String({source, source_rest});
      return;
    }
    case Attribute::kType:
      out.String({options.type_prefix, ".", ToString(event.type)});
      return;
    case Attribute::kSubject:
    case Attribute::kPartitionkey:
      if (event.scope.named_in_subject) {
        out.String(event.Subject());
        return;
      }
      // Event::Subject() without building it: "<service>" or "<service>/<id>".
      out.String({event.service, event.IsInstanceEvent() ? "/" : "", event.instance_id});
      return;
    case Attribute::kTime:
      out.Time(event.time);
      return;
    case Attribute::kDatacontenttype:
      out.String("application/json");
      return;
    case Attribute::kHbepoch:
      out.Number(*event.epoch);  // a number in JSON, text in headers
      return;
  }
}

// The structured event's members, sorted by name: each attribute's index in
// kAttributeNames, kData for the data object.
constexpr int kData = -1;
constexpr std::array<int, kAttributeNames.size() + 1> kStructuredOrder = [] {
  std::array<int, kAttributeNames.size() + 1> order{};
  order[0] = kData;
  for (std::size_t i = 0; i < kAttributeNames.size(); ++i) order[i + 1] = static_cast<int>(i);
  auto name = [](int member) {
    return member == kData ? std::string_view("data")
                           : kAttributeNames[static_cast<std::size_t>(member)];
  };
  std::sort(order.begin(), order.end(), [&](int a, int b) { return name(a) < name(b); });
  return order;
}();

// One member of the structured event. The order is a constant, so each
// member's key and value compile to what a hand-written sequence of writes
// would: no lookups per event.
template <int kMember>
void WriteMember(CompactWriter& w, const Event& event, const CloudEventOptions& options) {
  if constexpr (kMember == kData) {
    w.Key("data"), WriteData(w, event, options);
  } else {
    if (!HasAttribute(static_cast<Attribute>(kMember), event)) return;
    w.Key(kAttributeNames[static_cast<std::size_t>(kMember)]);
    WriteAttribute(w, static_cast<Attribute>(kMember), event, options);
  }
}

template <std::size_t... kIndex>
void WriteMembers(CompactWriter& w, const Event& event, const CloudEventOptions& options,
                  std::index_sequence<kIndex...>) {
  (WriteMember<kStructuredOrder[kIndex]>(w, event, options), ...);
}

// An attribute's value as plain text (binary mode).
class TextValue {
 public:
  void String(std::string_view text) { text_.assign(text); }
  void String(std::initializer_list<std::string_view> parts) {
    text_.clear();
    for (std::string_view part : parts) text_ += part;
  }
  void Time(WallTime time) { text_ = FormatRfc3339(time); }
  void Number(std::uint64_t number) { text_ = std::to_string(number); }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

std::string SerializeCloudEvent(const Event& event, const CloudEventOptions& options) {
  std::string out;
  SerializeCloudEvent(event, options, out);
  return out;
}

void SerializeCloudEvent(const Event& event, const CloudEventOptions& options, std::string& out) {
  CompactWriter w(out);
  w.BeginObject();
  WriteMembers(w, event, options, std::make_index_sequence<kStructuredOrder.size()>());
  w.EndObject();
  w.Finish();
}

void SerializeCloudEventData(const Event& event, const CloudEventOptions& options,
                             std::string& out) {
  CompactWriter w(out);
  WriteData(w, event, options);
  w.Finish();
}

std::vector<std::pair<std::string, std::string>> CloudEventAttributes(
    const Event& event, const CloudEventOptions& options) {
  std::vector<std::pair<std::string, std::string>> attributes;
  attributes.reserve(kAttributeNames.size());
  TextValue value;
  for (std::size_t i = 0; i < kAttributeNames.size(); ++i) {
    if (!HasAttribute(static_cast<Attribute>(i), event)) continue;
    WriteAttribute(value, static_cast<Attribute>(i), event, options);
    attributes.emplace_back(kAttributeNames[i], value.Take());
  }
  return attributes;
}

json CloudEventData(const Event& event, const CloudEventOptions& options) {
  std::string text;
  SerializeCloudEventData(event, options, text);
  return json::parse(text);
}

json ToCloudEvent(const Event& event, const CloudEventOptions& options) {
  return json::parse(SerializeCloudEvent(event, options));
}

}  // namespace hb

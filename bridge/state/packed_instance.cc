#include "bridge/state/packed_instance.h"

#include <cstdint>
#include <utility>

namespace hb {
namespace {

// Counts the bytes of an encoding, so that the buffer is allocated once at
// its final size: a spare capacity would be paid per instance.
class PackedSize {
 public:
  void Varint(std::uint64_t value) {
    do {
      ++size_;
      value >>= 7;
    } while (value != 0);
  }
  void Byte(std::uint8_t /*value*/) { ++size_; }
  void String(std::string_view text) {
    Varint(text.size());
    size_ += text.size();
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

class PackWriter {
 public:
  explicit PackWriter(std::string& out) : out_(out) {}
  void Varint(std::uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>((value & 0x7F) | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }
  void Byte(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void String(std::string_view text) {
    Varint(text.size());
    out_.append(text);
  }

 private:
  std::string& out_;
};

// Reads what PackWriter wrote; the bytes never come from outside the process,
// so there is nothing to validate.
class PackReader {
 public:
  explicit PackReader(std::string_view in) : in_(in) {}
  std::uint64_t Varint() {
    std::uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      const std::uint8_t byte = Byte();
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
  }
  std::uint8_t Byte() { return static_cast<std::uint8_t>(in_[position_++]); }
  std::string String() {
    const std::size_t size = Varint();
    std::string text(in_.substr(position_, size));
    position_ += size;
    return text;
  }

 private:
  std::string_view in_;
  std::size_t position_ = 0;
};

// Service, address, port, tags, meta, then each check as its status and six
// strings. Counts and string lengths are LEB128 varints: one byte each for
// the short strings Consul sends.
template <typename Out>
void Encode(const Instance& instance, Out& out) {
  out.String(instance.service);
  out.String(instance.address);
  // The int's bits as unsigned: any value survives the round trip.
  out.Varint(static_cast<std::uint32_t>(instance.port));
  out.Varint(instance.tags.size());
  for (const std::string& tag : instance.tags) out.String(tag);
  out.Varint(instance.meta.size());
  for (const auto& [key, value] : instance.meta) {
    out.String(key);
    out.String(value);
  }
  out.Varint(instance.checks.size());
  for (const Check& check : instance.checks) {
    out.Byte(static_cast<std::uint8_t>(check.status));
    out.String(check.id);
    out.String(check.name);
    out.String(check.output);
    out.String(check.notes);
    out.String(check.service_id);
    out.String(check.type);
  }
}

}  // namespace

PackedInstance::PackedInstance(const Instance& instance) {
  PackedSize counter;
  Encode(instance, counter);
  bytes_.reserve(counter.size());
  PackWriter writer(bytes_);
  Encode(instance, writer);
}

Instance PackedInstance::Unpack(std::string_view node, std::string_view id) const {
  Instance instance;
  instance.node = node;
  instance.id = id;
  // A default-constructed PackedInstance packed nothing: an empty instance.
  if (bytes_.empty()) return instance;
  PackReader in(bytes_);
  instance.service = in.String();
  instance.address = in.String();
  instance.port = static_cast<int>(static_cast<std::uint32_t>(in.Varint()));
  instance.tags.resize(in.Varint());
  for (std::string& tag : instance.tags) tag = in.String();
  for (std::uint64_t n = in.Varint(); n > 0; --n) {
    std::string key = in.String();
    instance.meta.emplace_hint(instance.meta.end(), std::move(key), in.String());
  }
  instance.checks.resize(in.Varint());
  for (Check& check : instance.checks) {
    check.status = static_cast<HealthStatus>(in.Byte());
    check.id = in.String();
    check.name = in.String();
    check.output = in.String();
    check.notes = in.String();
    check.service_id = in.String();
    check.type = in.String();
  }
  return instance;
}

}  // namespace hb

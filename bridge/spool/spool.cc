#include "bridge/spool/spool.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <set>

#include "bridge/common/crc32c.h"

namespace hb {
namespace {

constexpr std::uint8_t kEventRecord = 1;
constexpr std::uint8_t kAckRecord = 2;
constexpr std::size_t kHeaderBytes = 8;  // length, crc
// No event comes near this; a larger length is a corrupt header.
constexpr std::uint32_t kMaxRecordBytes = 64U << 20;
// live_ entry of an event whose record is still in the backlog.
constexpr std::uint32_t kNotWritten = 0;

void PutU32(std::string& out, std::uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(value >> shift));
}
void PutU64(std::string& out, std::uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8) out.push_back(static_cast<char>(value >> shift));
}
std::uint64_t GetLittleEndian(std::string_view bytes, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  return value;
}

std::string Frame(const std::string& body) {
  std::string record;
  record.reserve(kHeaderBytes + body.size());
  PutU32(record, static_cast<std::uint32_t>(body.size()));
  PutU32(record, Crc32c(body));
  record += body;
  return record;
}

std::string EventRecord(std::uint64_t seq, std::string_view payload) {
  std::string body;
  body.reserve(9 + payload.size());
  body.push_back(static_cast<char>(kEventRecord));
  PutU64(body, seq);
  body += payload;
  return Frame(body);
}

std::string AckRecord(std::span<const std::uint64_t> seqs) {
  std::string body;
  body.reserve(1 + 8 * seqs.size());
  body.push_back(static_cast<char>(kAckRecord));
  for (const std::uint64_t seq : seqs) PutU64(body, seq);
  return Frame(body);
}

std::filesystem::path SegmentPath(const std::filesystem::path& dir, std::uint32_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "%010u.spool", id);
  return dir / name;
}

std::optional<std::uint32_t> SegmentId(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.size() != 16 || !name.ends_with(".spool")) return std::nullopt;
  std::uint32_t id = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + 10, id);
  if (error != std::errc() || end != name.data() + 10 || id == kNotWritten) return std::nullopt;
  return id;
}

// One segment's readable records; `good_bytes` is where the first bad one
// starts (the file size when all are good).
struct ParsedSegment {
  std::vector<SpoolRecord> events;
  std::vector<std::uint64_t> acks;
  std::size_t good_bytes = 0;
  std::string problem;  // why reading stopped early
};

ParsedSegment ParseSegment(std::string_view data) {
  ParsedSegment parsed;
  std::size_t offset = 0;
  while (offset < data.size()) {
    if (data.size() - offset < kHeaderBytes) {
      parsed.problem = "torn record header";
      break;
    }
    const auto length = static_cast<std::uint32_t>(GetLittleEndian(data.substr(offset), 4));
    const auto crc = static_cast<std::uint32_t>(GetLittleEndian(data.substr(offset + 4), 4));
    if (length == 0 || length > kMaxRecordBytes) {
      parsed.problem = "impossible record length " + std::to_string(length);
      break;
    }
    if (data.size() - offset - kHeaderBytes < length) {
      parsed.problem = "torn record (" + std::to_string(length) + " bytes announced)";
      break;
    }
    const std::string_view body = data.substr(offset + kHeaderBytes, length);
    if (Crc32c(body) != crc) {
      parsed.problem = "checksum mismatch";
      break;
    }
    const auto kind = static_cast<std::uint8_t>(body[0]);
    if (kind == kEventRecord && body.size() >= 9) {
      parsed.events.push_back({GetLittleEndian(body.substr(1), 8), std::string(body.substr(9))});
    } else if (kind == kAckRecord && (body.size() - 1) % 8 == 0) {
      for (std::size_t at = 1; at < body.size(); at += 8) {
        parsed.acks.push_back(GetLittleEndian(body.substr(at), 8));
      }
    } else {
      parsed.problem = "unknown record kind " + std::to_string(kind);
      break;
    }
    offset += kHeaderBytes + length;
  }
  parsed.good_bytes = offset;
  return parsed;
}

}  // namespace

StatusOr<std::unique_ptr<Spool>> Spool::Open(SpoolOptions options, SpoolRecovery& recovery) {
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));  // NOLINT: private constructor
  Status recovered = spool->Recover(recovery);
  if (!recovered.ok()) return recovered;
  return spool;
}

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {}

Spool::~Spool() = default;

Status Spool::Recover(SpoolRecovery& recovery) {
  std::lock_guard lock(mutex_);
  std::error_code error;
  std::filesystem::create_directories(options_.dir, error);
  if (error) {
    return Status::Unavailable("cannot create spool directory " + options_.dir.string() + ": " +
                               error.message());
  }
  std::map<std::uint32_t, std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir, error)) {
    if (auto id = SegmentId(entry.path())) files.emplace(*id, entry.path());
  }
  if (error) {
    return Status::Unavailable("cannot list spool directory " + options_.dir.string() + ": " +
                               error.message());
  }

  std::map<std::uint64_t, std::pair<std::uint32_t, std::string>> events;  // by seq
  std::set<std::uint64_t> acked;
  std::uint64_t highest_seq = 0;
  for (const auto& [id, path] : files) {
    auto data = ReadWholeFile(path);
    if (!data.ok()) return data.status();
    ParsedSegment parsed = ParseSegment(*data);
    if (!parsed.problem.empty()) {
      // A crash mid-write leaves a torn tail; a flipped bit leaves a record
      // that fails its checksum. Either way what follows cannot be trusted,
      // and truncating keeps later appends readable.
      const std::uint64_t dropped = data->size() - parsed.good_bytes;
      recovery.dropped_bytes += dropped;
      recovery.problems.push_back(path.string() + ": " + parsed.problem + " at byte " +
                                  std::to_string(parsed.good_bytes) + ", dropped " +
                                  std::to_string(dropped) + " bytes");
      if (::truncate(path.c_str(), static_cast<off_t>(parsed.good_bytes)) != 0) {
        return ErrnoStatus("cannot truncate", path, errno);
      }
    }
    for (auto& record : parsed.events) {
      highest_seq = std::max(highest_seq, record.seq);
      events[record.seq] = {id, std::move(record.payload)};
    }
    acked.insert(parsed.acks.begin(), parsed.acks.end());
    segments_[id] = Segment{path, parsed.good_bytes, 0};
    total_bytes_ += parsed.good_bytes;
  }

  for (auto& [seq, entry] : events) {
    if (acked.contains(seq)) continue;
    live_[seq] = entry.first;
    ++segments_[entry.first].live;
    recovery.pending.push_back({seq, std::move(entry.second)});
  }
  next_seq_ = highest_seq + 1;
  // Earlier files are never appended to again: their tails may have been cut.
  Status started = StartSegment(files.empty() ? 1 : files.rbegin()->first + 1);
  if (!started.ok()) return started;
  Reclaim();
  return Status::Ok();
}

Status Spool::StartSegment(std::uint32_t id) {
  const std::filesystem::path path = SegmentPath(options_.dir, id);
  auto fd = OpenForAppend(path);
  if (!fd.ok()) return fd.status();
  // Not synced here (two fsyncs per 4 MiB would cost more than the
  // appends): the next Sync() flushes the finished segment and the new
  // file's directory entry before anything claims to be durable in them.
  if (current_.valid()) finished_unsynced_.push_back(std::move(current_));
  directory_unsynced_ = true;
  current_ = std::move(*fd);
  current_id_ = id;
  segments_[id] = Segment{path, 0, 0};
  return Status::Ok();
}

StatusOr<std::uint64_t> Spool::Append(std::string_view payload) {
  std::lock_guard lock(mutex_);
  const std::uint64_t seq = next_seq_;
  std::string record = EventRecord(seq, payload);
  std::uint64_t backlog_bytes = 0;
  for (const auto& [unused, pending] : backlog_) backlog_bytes += pending.size();
  if (total_bytes_ + backlog_bytes + record.size() > options_.max_bytes) {
    return Status::ResourceExhausted("spool " + options_.dir.string() + " is full (max_bytes " +
                                     std::to_string(options_.max_bytes) + ")");
  }
  ++next_seq_;
  if (segments_[current_id_].bytes >= options_.segment_bytes) {
    Status started = StartSegment(current_id_ + 1);
    if (!started.ok()) last_write_error_ = started;
  }
  if (FlushBacklog() && WriteRecord(record)) {
    live_[seq] = current_id_;
    ++segments_[current_id_].live;
  } else {
    live_[seq] = kNotWritten;
    backlog_.emplace_back(seq, std::move(record));
  }
  return seq;
}

void Spool::Acknowledge(std::span<const std::uint64_t> seqs) {
  std::lock_guard lock(mutex_);
  std::vector<std::uint64_t> written;
  written.reserve(seqs.size());
  for (const std::uint64_t seq : seqs) {
    auto it = live_.find(seq);
    if (it == live_.end()) continue;
    if (it->second == kNotWritten) {
      // Never reached the disk: forgetting the record is the acknowledgement.
      std::erase_if(backlog_, [seq](const auto& pending) { return pending.first == seq; });
    } else {
      --segments_[it->second].live;
      written.push_back(seq);
    }
    live_.erase(it);
  }
  if (written.empty()) return;
  std::string record = AckRecord(written);
  if (!FlushBacklog() || !WriteRecord(record)) backlog_.emplace_back(0, std::move(record));
  Reclaim();
}

Status Spool::Sync() {
  std::lock_guard lock(mutex_);
  if (!FlushBacklog()) return last_write_error_;
  if (!current_.valid()) return last_write_error_;
  for (const UniqueFd& finished : finished_unsynced_) {
    if (::fdatasync(finished.get()) != 0) return ErrnoStatus("cannot sync", options_.dir, errno);
  }
  finished_unsynced_.clear();
  if (::fdatasync(current_.get()) != 0) {
    return ErrnoStatus("cannot sync", segments_[current_id_].path, errno);
  }
  if (directory_unsynced_) {
    Status synced = SyncDirectory(options_.dir);
    if (!synced.ok()) return synced;
    directory_unsynced_ = false;
  }
  return Status::Ok();
}

bool Spool::WriteRecord(const std::string& record) {
  Segment& segment = segments_[current_id_];
  Status written = current_.valid()
                       ? WriteAll(current_.get(), record, segment.path)
                       : Status::Unavailable("no spool segment open in " + options_.dir.string());
  if (!written.ok()) {
    // A partial record would hide every later one from recovery.
    if (current_.valid()) {
      [[maybe_unused]] const int undone =
          ::ftruncate(current_.get(), static_cast<off_t>(segment.bytes));
    }
    last_write_error_ = written;
    return false;
  }
  segment.bytes += record.size();
  total_bytes_ += record.size();
  last_write_error_ = Status::Ok();
  return true;
}

bool Spool::FlushBacklog() {
  std::size_t flushed = 0;
  for (; flushed < backlog_.size(); ++flushed) {
    auto& [seq, record] = backlog_[flushed];
    if (!WriteRecord(record)) break;
    if (seq != 0) {
      live_[seq] = current_id_;
      ++segments_[current_id_].live;
    }
  }
  backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<std::ptrdiff_t>(flushed));
  return backlog_.empty();
}

void Spool::Reclaim() {
  // Oldest first and only a prefix: the ack records of a removed segment
  // concern its own events or older ones, which are gone too.
  while (segments_.size() > 1 && segments_.begin()->first != current_id_ &&
         segments_.begin()->second.live == 0) {
    const Segment& oldest = segments_.begin()->second;
    std::error_code ignored;
    std::filesystem::remove(oldest.path, ignored);
    total_bytes_ -= oldest.bytes;
    segments_.erase(segments_.begin());
  }
}

void Spool::Destroy() {
  std::lock_guard lock(mutex_);
  current_ = UniqueFd();
  finished_unsynced_.clear();
  segments_.clear();
  live_.clear();
  backlog_.clear();
  total_bytes_ = 0;
  std::error_code ignored;
  std::filesystem::remove_all(options_.dir, ignored);
}

std::uint64_t Spool::bytes() const {
  std::lock_guard lock(mutex_);
  return total_bytes_;
}

std::size_t Spool::unacknowledged() const {
  std::lock_guard lock(mutex_);
  return live_.size();
}

Status Spool::last_write_error() const {
  std::lock_guard lock(mutex_);
  return last_write_error_;
}

}  // namespace hb

#include "bridge/spool/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>

#include "bridge/common/crc32c.h"

namespace hb {
namespace {

constexpr std::uint8_t kEventRecord = 1;
constexpr std::uint8_t kAckRecord = 2;
constexpr std::size_t kHeaderBytes = 8;  // length, crc
// No event comes near this; a larger length is a corrupt header.
constexpr std::uint32_t kMaxRecordBytes = 64U << 20;
// The segment of an event whose record is still in the backlog.
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
struct ParsedEvent {
  std::uint64_t seq = 0;
  std::uint32_t offset = 0;
  std::uint32_t length = 0;  // header included
};
struct ParsedSegment {
  std::vector<ParsedEvent> events;
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
      parsed.events.push_back({GetLittleEndian(body.substr(1), 8),
                               static_cast<std::uint32_t>(offset),
                               static_cast<std::uint32_t>(kHeaderBytes + length)});
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
  MutexLock lock(&mutex_);
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

  // Only where each event is, not the event: a full spool is read back in
  // pages as its sink drains it, so memory does not grow with the backlog.
  struct Found {
    std::uint64_t seq;
    std::uint32_t segment;
    std::uint32_t offset;
    std::uint32_t length;
  };
  std::vector<Found> events;
  std::vector<std::uint64_t> acked;
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
    for (const ParsedEvent& event : parsed.events) {
      highest_seq = std::max(highest_seq, event.seq);
      events.push_back({event.seq, id, event.offset, event.length});
    }
    acked.insert(acked.end(), parsed.acks.begin(), parsed.acks.end());
    segments_[id] = Segment{path, parsed.good_bytes, 0, 0};
    total_bytes_ += parsed.good_bytes;
  }

  // An event compacted forward is in two files until the older one is
  // removed: the copy in the newer file (found later) is the one kept.
  std::stable_sort(events.begin(), events.end(),
                   [](const Found& a, const Found& b) { return a.seq < b.seq; });
  std::sort(acked.begin(), acked.end());
  auto is_acked = [&acked](std::uint64_t seq) {
    return std::binary_search(acked.begin(), acked.end(), seq);
  };
  auto superseded_or_acked = [&](std::size_t i) {
    return (i + 1 < events.size() && events[i + 1].seq == events[i].seq) || is_acked(events[i].seq);
  };
  // Sized once: growing it by doubling would hold twice the index, and a
  // copy of it, at the moment the start needs the most memory.
  std::size_t live = 0;
  for (std::size_t i = 0; i < events.size(); ++i) live += superseded_or_acked(i) ? 0 : 1;
  index_.reserve(live);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Found& found = events[i];
    if (superseded_or_acked(i)) continue;
    index_.push_back(Location{found.seq, found.segment, found.offset, found.length, true});
    Segment& segment = segments_[found.segment];
    ++segment.live;
    segment.live_bytes += found.length;
    ++live_count_;
  }
  recovery.pending = live_count_;
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
  segments_[id] = Segment{path, 0, 0, 0};
  return Status::Ok();
}

StatusOr<std::uint64_t> Spool::Append(std::string_view payload) {
  MutexLock lock(&mutex_);
  const std::uint64_t seq = next_seq_;
  std::string record = EventRecord(seq, payload);
  while (total_bytes_ + backlog_bytes_ + record.size() > options_.max_bytes) {
    if (!Compact()) {
      return Status::ResourceExhausted("spool " + options_.dir.string() + " is full (max_bytes " +
                                       std::to_string(options_.max_bytes) + ")");
    }
  }
  if (!backlog_.empty() && !FlushBacklog() &&
      backlog_bytes_ + record.size() > options_.max_unwritten_bytes) {
    return Status::Unavailable("spool " + options_.dir.string() + " cannot write (" +
                               last_write_error_.message() + ") and already holds " +
                               std::to_string(backlog_bytes_) +
                               " unwritten bytes in memory (max_unwritten_bytes " +
                               std::to_string(options_.max_unwritten_bytes) + ")");
  }
  ++next_seq_;
  index_.push_back(Location{seq, kNotWritten, 0, static_cast<std::uint32_t>(record.size()), true});
  ++live_count_;
  if (segments_[current_id_].bytes >= options_.segment_bytes) {
    Status started = StartSegment(current_id_ + 1);
    if (!started.ok()) last_write_error_ = std::move(started);
  }
  if (!(backlog_.empty() && WriteEventRecord(seq, record))) {
    backlog_bytes_ += record.size();
    backlog_.emplace_back(seq, std::move(record));
  }
  return seq;
}

Spool::Location* Spool::Find(std::uint64_t seq) {
  // Appended in seq order, and compaction keeps each event's seq.
  auto it = std::lower_bound(
      index_.begin(), index_.end(), seq,
      [](const Location& entry, std::uint64_t wanted) { return entry.seq < wanted; });
  return it != index_.end() && it->seq == seq ? &*it : nullptr;
}

void Spool::TrimIndex() {
  if (index_dead_ < 64 || index_dead_ * 2 < index_.size()) return;
  std::erase_if(index_, [](const Location& entry) { return !entry.live; });
  index_dead_ = 0;
}

void Spool::Acknowledge(std::span<const std::uint64_t> seqs) {
  MutexLock lock(&mutex_);
  AcknowledgeLocked(seqs);
}

void Spool::AcknowledgeLocked(std::span<const std::uint64_t> seqs) {
  std::vector<std::uint64_t> written;
  written.reserve(seqs.size());
  for (const std::uint64_t seq : seqs) {
    Location* location = Find(seq);
    if (location == nullptr || !location->live) continue;
    location->live = false;
    ++index_dead_;
    --live_count_;
    if (location->segment == kNotWritten) {
      // Never reached the disk: forgetting the record is the acknowledgement.
      auto it = std::find_if(backlog_.begin(), backlog_.end(),
                             [seq](const auto& pending) { return pending.first == seq; });
      if (it != backlog_.end()) {
        backlog_bytes_ -= it->second.size();
        backlog_.erase(it);
      }
    } else {
      Segment& segment = segments_[location->segment];
      --segment.live;
      segment.live_bytes -= location->length;
      written.push_back(seq);
    }
  }
  TrimIndex();
  if (written.empty()) return;
  std::string record = AckRecord(written);
  if (!FlushBacklog() || !WriteRecord(record)) {
    backlog_bytes_ += record.size();
    backlog_.emplace_back(0, std::move(record));
  }
  Reclaim();
}

SpoolPage Spool::ReadAfter(std::uint64_t after, std::size_t max_records) {
  MutexLock lock(&mutex_);
  SpoolPage page;
  page.through = after;
  std::vector<std::uint64_t> unreadable;
  OpenSegment open;
  auto it = std::upper_bound(
      index_.begin(), index_.end(), after,
      [](std::uint64_t wanted, const Location& entry) { return wanted < entry.seq; });
  for (; it != index_.end() && page.records.size() < max_records; ++it) {
    const Location location = *it;
    const std::uint64_t seq = location.seq;
    page.through = seq;
    if (!location.live) continue;
    StatusOr<std::string> record = ReadRecord(seq, location, open);
    if (!record.ok()) {
      page.problems.push_back("event #" + std::to_string(seq) + ": " + record.status().message());
      page.dropped_bytes += location.length;
      unreadable.push_back(seq);
      continue;
    }
    // The record is its header, kind and seq, then the payload.
    record->erase(0, kHeaderBytes + 9);
    page.records.push_back({seq, std::move(*record)});
  }
  AcknowledgeLocked(unreadable);
  return page;
}

StatusOr<std::string> Spool::ReadRecord(std::uint64_t seq, const Location& location,
                                        OpenSegment& open) {
  if (location.segment == kNotWritten) {
    for (const auto& [pending_seq, record] : backlog_) {
      if (pending_seq == seq) return record;
    }
    return Status::Internal("record missing from memory");
  }
  const Segment& segment = segments_[location.segment];
  if (!open.fd.valid() || open.id != location.segment) {
    open.fd = UniqueFd(::open(segment.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!open.fd.valid()) return ErrnoStatus("cannot open", segment.path, errno);
    open.id = location.segment;
  }
  std::string record(location.length, '\0');
  std::size_t done = 0;
  while (done < record.size()) {
    const ssize_t got = ::pread(open.fd.get(), record.data() + done, record.size() - done,
                                static_cast<off_t>(location.offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoStatus("cannot read", segment.path, errno);
    if (got == 0)
      return Status::DataLoss(segment.path.string() + " is shorter than the spool's index");
    done += static_cast<std::size_t>(got);
  }
  const std::string_view view(record);
  const auto length = static_cast<std::uint32_t>(GetLittleEndian(view, 4));
  const auto crc = static_cast<std::uint32_t>(GetLittleEndian(view.substr(4), 4));
  const std::string_view body = view.substr(kHeaderBytes);
  if (length != body.size() || Crc32c(body) != crc || body.size() < 9 ||
      static_cast<std::uint8_t>(body[0]) != kEventRecord ||
      GetLittleEndian(body.substr(1), 8) != seq) {
    return Status::DataLoss(segment.path.string() + ": record at byte " +
                            std::to_string(location.offset) + " changed since it was written");
  }
  return record;
}

Status Spool::Sync() {
  MutexLock lock(&mutex_);
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
    last_write_error_ = std::move(written);
    return false;
  }
  segment.bytes += record.size();
  total_bytes_ += record.size();
  last_write_error_ = Status::Ok();
  return true;
}

bool Spool::WriteEventRecord(std::uint64_t seq, const std::string& record) {
  const std::uint64_t offset = segments_[current_id_].bytes;
  if (!WriteRecord(record)) return false;
  Location* location = Find(seq);
  if (location == nullptr || !location->live) return true;  // acknowledged meanwhile
  location->segment = current_id_;
  location->offset = static_cast<std::uint32_t>(offset);
  Segment& segment = segments_[current_id_];
  ++segment.live;
  segment.live_bytes += record.size();
  return true;
}

bool Spool::FlushBacklog() {
  std::size_t flushed = 0;
  for (; flushed < backlog_.size(); ++flushed) {
    auto& [seq, record] = backlog_[flushed];
    if (seq != 0 ? !WriteEventRecord(seq, record) : !WriteRecord(record)) break;
    backlog_bytes_ -= record.size();
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

bool Spool::Compact() {
  if (!backlog_.empty()) return false;  // the disk refuses writes: copying would not help
  if (segments_.size() < 2 || segments_.begin()->first == current_id_) return false;
  const std::uint32_t id = segments_.begin()->first;
  const Segment& oldest = segments_.begin()->second;
  // Worth it only when copying its live events costs less than half of what
  // removing it frees; one segment per call keeps an Append() short.
  if (oldest.live_bytes * 2 > oldest.bytes) return false;
  const std::uint64_t before = total_bytes_;
  std::vector<std::uint64_t> moving;  // oldest first: the index is in seq order
  for (const Location& entry : index_) {
    if (moving.size() == oldest.live) break;
    if (entry.live && entry.segment == id) moving.push_back(entry.seq);
  }
  OpenSegment open;
  for (const std::uint64_t seq : moving) {
    Location* location = Find(seq);
    StatusOr<std::string> record = ReadRecord(seq, *location, open);
    if (!record.ok()) return false;
    if (segments_[current_id_].bytes >= options_.segment_bytes &&
        !StartSegment(current_id_ + 1).ok()) {
      return false;
    }
    const Location old = *location;
    // Same record, same seq: recovery keeps the copy in the newer file.
    if (!WriteEventRecord(seq, *record)) return false;
    Segment& from = segments_[old.segment];
    --from.live;
    from.live_bytes -= old.length;
  }
  Reclaim();
  return total_bytes_ < before;
}

void Spool::Destroy() {
  MutexLock lock(&mutex_);
  current_ = UniqueFd();
  finished_unsynced_.clear();
  segments_.clear();
  index_.clear();
  index_dead_ = 0;
  live_count_ = 0;
  backlog_.clear();
  backlog_bytes_ = 0;
  total_bytes_ = 0;
  std::error_code ignored;
  std::filesystem::remove_all(options_.dir, ignored);
}

std::uint64_t Spool::bytes() const {
  MutexLock lock(&mutex_);
  return total_bytes_;
}

std::size_t Spool::unacknowledged() const {
  MutexLock lock(&mutex_);
  return live_count_;
}

std::uint64_t Spool::last_seq() const {
  MutexLock lock(&mutex_);
  return next_seq_ - 1;
}

Status Spool::last_write_error() const {
  MutexLock lock(&mutex_);
  return last_write_error_;
}

}  // namespace hb

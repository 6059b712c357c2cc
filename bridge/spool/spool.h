#pragma once

// The spool of one sink: an append-only, checksummed log of the events the
// sink has not acknowledged yet, so that a crash or a restart resumes
// delivery from the first unacknowledged event instead of losing the queue.
//
// On disk, <dir>/<segment id>.spool files, each a sequence of records:
//   u32 length | u32 crc32c(body) | body = u8 kind, then
//   kind 1 (event): u64 seq, payload       kind 2 (ack): u64 seq...
// all little-endian. Acknowledgements are records too, so a segment is
// reclaimed once every event in it and in the segments before it is
// acknowledged: an ack record is never lost while its event's file exists.
//
// Durability: Append() and Acknowledge() write() at once, which survives a
// crash of the process (kill -9); Sync() makes them survive a crash of the
// machine. The owner calls Sync() before it saves the engine's state, so the
// saved state never claims an event the spool could lose (docs/design.md,
// "Delivery guarantees").
//
// Thread-safe.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bridge/common/file_io.h"
#include "bridge/common/status.h"

namespace hb {

struct SpoolOptions {
  std::filesystem::path dir;  // created when missing
  // Bound on the files' total size; an Append() past it is refused.
  // Default: 256 MiB.
  std::uint64_t max_bytes = std::uint64_t{256} << 20;
  // A new segment starts once the current one is this large. Default: 4 MiB.
  std::uint64_t segment_bytes = std::uint64_t{4} << 20;
};

struct SpoolRecord {
  std::uint64_t seq = 0;
  std::string payload;
};

// What Open() found on disk.
struct SpoolRecovery {
  std::vector<SpoolRecord> pending;   // unacknowledged events, in append order
  std::uint64_t dropped_bytes = 0;    // torn or corrupt data cut away
  std::vector<std::string> problems;  // one line per file that had some
};

class Spool {
 public:
  // Reads what an earlier run left in `options.dir`; a torn or corrupt tail
  // is truncated to the last good record and reported in `recovery`, never
  // an error. Errors: the directory cannot be created or read.
  static StatusOr<std::unique_ptr<Spool>> Open(SpoolOptions options, SpoolRecovery& recovery);
  ~Spool();

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Stores an event; returns its sequence number. kResourceExhausted when
  // max_bytes would be exceeded (nothing stored). When the disk refuses the
  // write (full, I/O error) the record is kept in memory, the error is
  // returned through last_write_error(), and every later call retries it:
  // the event is still accepted.
  StatusOr<std::uint64_t> Append(std::string_view payload);

  // The events are delivered or dead-lettered: they will not be replayed.
  // Unknown or repeated sequence numbers are ignored.
  void Acknowledge(std::span<const std::uint64_t> seqs);

  // fdatasync of the current segment (retrying records kept in memory).
  Status Sync();

  // Removes every file of the spool (its sink was removed for good).
  void Destroy();

  std::uint64_t bytes() const;
  std::size_t unacknowledged() const;
  // The error of the current write-failure streak, OK when writes succeed.
  Status last_write_error() const;

 private:
  struct Segment {
    std::filesystem::path path;
    std::uint64_t bytes = 0;
    std::size_t live = 0;  // unacknowledged events in it
  };

  explicit Spool(SpoolOptions options);
  Status Recover(SpoolRecovery& recovery);
  Status StartSegment(std::uint32_t id);
  // Writes one encoded record to the current segment, undoing a partial
  // write; false (with last_write_error_ set) when the disk refused it.
  bool WriteRecord(const std::string& record);
  bool FlushBacklog();
  void Reclaim();

  const SpoolOptions options_;
  mutable std::mutex mutex_;
  std::map<std::uint32_t, Segment> segments_;  // GUARDED_BY(mutex_), by id
  std::uint32_t current_id_ = 0;               // GUARDED_BY(mutex_)
  UniqueFd current_;                           // GUARDED_BY(mutex_)
  // Segments finished since the last Sync(), kept open to be synced by it.
  std::vector<UniqueFd> finished_unsynced_;  // GUARDED_BY(mutex_)
  bool directory_unsynced_ = false;          // GUARDED_BY(mutex_)
  std::uint64_t total_bytes_ = 0;            // GUARDED_BY(mutex_)
  std::uint64_t next_seq_ = 1;               // GUARDED_BY(mutex_)
  // Unacknowledged event -> its segment.
  std::unordered_map<std::uint64_t, std::uint32_t> live_;  // GUARDED_BY(mutex_)
  // Records the disk refused, oldest first, with the seq of their event (0
  // for acks); written before anything newer.
  std::vector<std::pair<std::uint64_t, std::string>> backlog_;  // GUARDED_BY(mutex_)
  Status last_write_error_;                                     // GUARDED_BY(mutex_)
};

}  // namespace hb

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
// Only a small index of the unacknowledged events is kept in memory (24
// bytes each, twice that at most before acknowledged entries are trimmed); ReadAfter() reads them
// back in pages, so a spool of any size is replayed in memory bounded by its sink's queue. A
// segment held by a few long-unacknowledged events is compacted (those events copied forward) when
// the spool would otherwise be full, so one stuck event cannot fill it.
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
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/file_io.h"
#include "bridge/common/mutex.h"
#include "bridge/common/status.h"

namespace hb {

struct SpoolOptions {
  std::filesystem::path dir;  // created when missing
  // Bound on the files' total size; an Append() past it is refused.
  // Default: 256 MiB.
  std::uint64_t max_bytes = std::uint64_t{256} << 20;
  // A new segment starts once the current one is this large. Default: 4 MiB.
  std::uint64_t segment_bytes = std::uint64_t{4} << 20;
  // Bound on the records kept in memory while the disk refuses writes
  // (full, I/O error); past it Append() is refused. Default: 4 MiB.
  std::uint64_t max_unwritten_bytes = std::uint64_t{4} << 20;
};

struct SpoolRecord {
  std::uint64_t seq = 0;
  std::string payload;
};

// What Open() found on disk. The events themselves stay there: ReadAfter()
// pages them in.
struct SpoolRecovery {
  std::size_t pending = 0;            // unacknowledged events
  std::uint64_t dropped_bytes = 0;    // torn or corrupt data cut away
  std::vector<std::string> problems;  // one line per file that had some
};

// One page of unacknowledged events read back from the spool.
struct SpoolPage {
  std::vector<SpoolRecord> records;  // oldest first
  // The highest sequence number the read went past (records that could not
  // be read included): the next read starts after it.
  std::uint64_t through = 0;
  // Records that could not be read back (corrupted since they were
  // written); they are acknowledged, so never read again.
  std::vector<std::string> problems;
  std::uint64_t dropped_bytes = 0;
};

class Spool {
 public:
  // Reads what an earlier run left in `options.dir`; a torn or corrupt tail
  // is truncated to the last good record and reported in `recovery`, never
  // an error. Only an index of the events is kept in memory, not the
  // events. Errors: the directory cannot be created or read.
  static StatusOr<std::unique_ptr<Spool>> Open(SpoolOptions options, SpoolRecovery& recovery);
  ~Spool();

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Stores an event; returns its sequence number. kResourceExhausted when
  // max_bytes would be exceeded even after compaction (nothing stored).
  // When the disk refuses the write (full, I/O error) the record is kept in
  // memory, the error is returned through last_write_error(), and every
  // later call retries it: the event is still accepted, unless
  // max_unwritten_bytes are already waiting (kUnavailable, nothing stored).
  StatusOr<std::uint64_t> Append(std::string_view payload);

  // Up to `max_records` unacknowledged events with a sequence number above
  // `after`, oldest first, read back from the files (or from memory for
  // records the disk refused).
  SpoolPage ReadAfter(std::uint64_t after, std::size_t max_records);

  // The events are delivered or dead-lettered: they will not be replayed.
  // Unknown or repeated sequence numbers are ignored.
  void Acknowledge(std::span<const std::uint64_t> seqs);

  // fdatasync of the current segment (retrying records kept in memory).
  Status Sync();

  // Removes every file of the spool (its sink was removed for good).
  void Destroy();

  std::uint64_t bytes() const;
  std::size_t unacknowledged() const;
  // The sequence number of the newest event stored, 0 when none ever was.
  std::uint64_t last_seq() const;
  // The error of the current write-failure streak, OK when writes succeed.
  Status last_write_error() const;

 private:
  struct Segment {
    std::filesystem::path path;
    std::uint64_t bytes = 0;
    std::size_t live = 0;          // unacknowledged events in it
    std::uint64_t live_bytes = 0;  // their records' size
  };
  // Where the record of one event is.
  struct Location {
    std::uint64_t seq = 0;
    std::uint32_t segment = 0;  // kNotWritten: in backlog_
    std::uint32_t offset = 0;
    std::uint32_t length = 0;  // the whole record, header included
    bool live = false;
  };

  explicit Spool(SpoolOptions options);
  Status Recover(SpoolRecovery& recovery) EXCLUDES(mutex_);
  Status StartSegment(std::uint32_t id) REQUIRES(mutex_);
  // Writes one encoded record to the current segment, undoing a partial
  // write; false (with last_write_error_ set) when the disk refused it.
  bool WriteRecord(const std::string& record) REQUIRES(mutex_);
  // Writes the record of event `seq` and points its index entry at it.
  bool WriteEventRecord(std::uint64_t seq, const std::string& record) REQUIRES(mutex_);
  bool FlushBacklog() REQUIRES(mutex_);
  void Reclaim() REQUIRES(mutex_);
  // Copies the live events of old, mostly acknowledged segments forward to
  // the current one, so one long-unacknowledged event does not pin every
  // later segment on disk. Returns whether anything was freed.
  bool Compact() REQUIRES(mutex_);
  Location* Find(std::uint64_t seq) REQUIRES(mutex_);
  void AcknowledgeLocked(std::span<const std::uint64_t> seqs) REQUIRES(mutex_);
  // The segment file a series of reads has open.
  struct OpenSegment {
    std::uint32_t id = 0;
    UniqueFd fd;
  };
  // The record at `location` of event `seq`, read back and checked.
  StatusOr<std::string> ReadRecord(std::uint64_t seq, const Location& location, OpenSegment& open)
      REQUIRES(mutex_);
  // Drops the acknowledged entries once they are half the index.
  void TrimIndex() REQUIRES(mutex_);

  const SpoolOptions options_;
  mutable Mutex mutex_;
  std::map<std::uint32_t, Segment> segments_ GUARDED_BY(mutex_);  // by id
  std::uint32_t current_id_ GUARDED_BY(mutex_) = 0;
  UniqueFd current_ GUARDED_BY(mutex_);
  // Segments finished since the last Sync(), kept open to be synced by it.
  std::vector<UniqueFd> finished_unsynced_ GUARDED_BY(mutex_);
  bool directory_unsynced_ GUARDED_BY(mutex_) = false;
  std::uint64_t total_bytes_ GUARDED_BY(mutex_) = 0;
  std::uint64_t next_seq_ GUARDED_BY(mutex_) = 1;
  // The unacknowledged events by seq, and acknowledged ones not trimmed
  // yet (at most as many): bounded by what the spool holds, however long
  // one event stays unacknowledged.
  std::vector<Location> index_ GUARDED_BY(mutex_);
  std::size_t index_dead_ GUARDED_BY(mutex_) = 0;
  std::size_t live_count_ GUARDED_BY(mutex_) = 0;
  // Records the disk refused, oldest first, with the seq of their event (0
  // for acks); written before anything newer.
  std::vector<std::pair<std::uint64_t, std::string>> backlog_ GUARDED_BY(mutex_);
  std::uint64_t backlog_bytes_ GUARDED_BY(mutex_) = 0;
  Status last_write_error_ GUARDED_BY(mutex_);
};

}  // namespace hb

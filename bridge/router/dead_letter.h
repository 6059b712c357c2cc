#pragma once

// The dead-letter file of one sink: events that could not be delivered, one
// JSON object per line with the reason, so nothing is ever silently lost.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/model/event.h"

namespace hb {

// How large the file grows: past max_bytes it is renamed <path>.1 (older
// ones shift to .2, ...) and a new one started; the oldest beyond `keep`
// rotated files is deleted, and that loss is logged. A sink that fails for
// days must not fill the disk the spool and the state share.
struct DeadLetterLimits {
  std::uint64_t max_bytes = std::uint64_t{64} << 20;  // Default: 64MiB
  int keep = 3;                                       // rotated files kept. Default: 3
};

// Thread-safe.
class DeadLetterFile {
 public:
  // Serializes an event to its CloudEvents JSON object.
  using Serializer = std::function<std::string(const Event&)>;

  // `path` is appended to (created when missing, 0600, never through a
  // link). An empty path logs every dead letter at error level instead,
  // with the whole event.
  static StatusOr<std::unique_ptr<DeadLetterFile>> Open(std::string sink, std::string path,
                                                        Serializer serialize,
                                                        DeadLetterLimits limits = {});

  // Appends {"sink", "reason", "attempts", "dead_lettered_at", "event"} and
  // flushes, so the line survives a crash right after.
  void Write(const Event& event, std::string_view reason, int attempts, WallTime now);

  const std::string& path() const { return path_; }

  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  using FilePtr = std::unique_ptr<std::FILE, FileCloser>;
  // Use Open(); `file` may be null (log instead).
  DeadLetterFile(std::string sink, std::string path, FilePtr file, Serializer serialize,
                 DeadLetterLimits limits, std::uint64_t size);

 private:
  // Renames the full file away and opens a new one.
  void RotateLocked() REQUIRES(mutex_);

  const std::string sink_;
  const std::string path_;
  const Serializer serialize_;
  const DeadLetterLimits limits_;
  Mutex mutex_;
  FilePtr file_ GUARDED_BY(mutex_);
  std::uint64_t size_ GUARDED_BY(mutex_);  // bytes in the current file
};

}  // namespace hb

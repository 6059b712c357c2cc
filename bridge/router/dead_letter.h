#pragma once

// The dead-letter file of one sink: events that could not be delivered, one
// JSON object per line with the reason, so nothing is ever silently lost.

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "bridge/common/status.h"
#include "bridge/model/event.h"

namespace hb {

// Thread-safe.
class DeadLetterFile {
 public:
  // Serializes an event to its CloudEvents JSON object.
  using Serializer = std::function<std::string(const Event&)>;

  // `path` is appended to (created when missing). An empty path logs every
  // dead letter at error level instead, with the whole event.
  static StatusOr<std::unique_ptr<DeadLetterFile>> Open(std::string sink, std::string path,
                                                        Serializer serialize);

  // Appends {"sink", "reason", "attempts", "dead_lettered_at", "event"} and
  // flushes, so the line survives a crash right after.
  void Write(const Event& event, std::string_view reason, int attempts, WallTime now);

  const std::string& path() const { return path_; }

  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  using FilePtr = std::unique_ptr<std::FILE, FileCloser>;
  // Use Open(); `file` may be null (log instead).
  DeadLetterFile(std::string sink, std::string path, FilePtr file, Serializer serialize);

 private:
  const std::string sink_;
  const std::string path_;
  const Serializer serialize_;
  std::mutex mutex_;
  FilePtr file_;  // GUARDED_BY(mutex_)
};

}  // namespace hb

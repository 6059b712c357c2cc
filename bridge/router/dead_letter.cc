#include "bridge/router/dead_letter.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <system_error>

namespace hb {

namespace {

// Appending, created 0600 when missing, refused when `path` is a link.
DeadLetterFile::FilePtr OpenForAppending(const std::string& path, std::uint64_t& size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  struct stat info {};
  size = ::fstat(fd, &info) == 0 ? static_cast<std::uint64_t>(info.st_size) : 0;
  DeadLetterFile::FilePtr file(::fdopen(fd, "a"));
  if (file == nullptr) ::close(fd);
  return file;
}

}  // namespace

StatusOr<std::unique_ptr<DeadLetterFile>> DeadLetterFile::Open(std::string sink, std::string path,
                                                               Serializer serialize,
                                                               DeadLetterLimits limits) {
  FilePtr file;
  std::uint64_t size = 0;
  if (!path.empty()) {
    file = OpenForAppending(path, size);
    if (file == nullptr) {
      return Status::FailedPrecondition("sink " + sink + ": cannot open dead-letter file " + path +
                                        ": " + std::system_category().message(errno));
    }
  }
  return std::make_unique<DeadLetterFile>(std::move(sink), std::move(path), std::move(file),
                                          std::move(serialize), limits, size);
}

DeadLetterFile::DeadLetterFile(std::string sink, std::string path, FilePtr file,
                               Serializer serialize, DeadLetterLimits limits, std::uint64_t size)
    : sink_(std::move(sink)),
      path_(std::move(path)),
      serialize_(std::move(serialize)),
      limits_(limits),
      file_(std::move(file)),
      size_(size) {}

void DeadLetterFile::RotateLocked() {
  file_.reset();
  const std::string oldest = path_ + "." + std::to_string(limits_.keep);
  struct stat info {};
  if (::stat(oldest.c_str(), &info) == 0) {
    spdlog::error(
        "sink {}: dead-letter files past {} rotations: {} bytes of the oldest dead "
        "letters ({}) are deleted; raise dead_letter_max_bytes or replay them",
        sink_, limits_.keep, info.st_size, oldest);
    ::unlink(oldest.c_str());
  }
  for (int n = limits_.keep - 1; n >= 1; --n) {
    const std::string from = path_ + "." + std::to_string(n);
    ::rename(from.c_str(), (path_ + "." + std::to_string(n + 1)).c_str());
  }
  if (limits_.keep >= 1) {
    ::rename(path_.c_str(), (path_ + ".1").c_str());
  } else {
    ::unlink(path_.c_str());
  }
  file_ = OpenForAppending(path_, size_);
  spdlog::warn("sink {}: dead-letter file {} reached {} bytes; it was rotated to {}.1", sink_,
               path_, limits_.max_bytes, path_);
}

void DeadLetterFile::Write(const Event& event, std::string_view reason, int attempts,
                           WallTime now) {
  nlohmann::json line = {
      {"sink", sink_},
      {"reason", reason},
      {"attempts", attempts},
      {"dead_lettered_at",
       std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()},
      {"event", nlohmann::json::parse(serialize_(event))},
  };
  std::string text = line.dump();
  MutexLock lock(&mutex_);
  if (file_ == nullptr) {
    spdlog::error("sink {}: dead letter (no dead-letter file): {}", sink_, text);
    return;
  }
  text.push_back('\n');
  if (size_ > 0 && size_ + text.size() > limits_.max_bytes) RotateLocked();
  if (file_ == nullptr) {
    spdlog::error("sink {}: cannot reopen dead-letter file {} ({}); event: {}", sink_, path_,
                  std::system_category().message(errno), text);
    return;
  }
  size_ += text.size();
  if (std::fwrite(text.data(), 1, text.size(), file_.get()) != text.size() ||
      std::fflush(file_.get()) != 0) {
    // The disk is full or gone: the log is the last place to keep it.
    spdlog::error("sink {}: cannot write dead-letter file {} ({}); event: {}", sink_, path_,
                  std::system_category().message(errno), text);
  }
}

}  // namespace hb

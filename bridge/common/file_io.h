#pragma once

// The few POSIX file operations durable storage needs (spool, saved state),
// with errors as Status values naming the path and the errno text.

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "bridge/common/status.h"

namespace hb {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// "<what> <path>: <strerror(errno)>", as the status code errno implies
// (ENOSPC and EDQUOT are kResourceExhausted, the rest kUnavailable).
Status ErrnoStatus(std::string_view what, const std::filesystem::path& path, int error);

// Every file below is created 0600 and never through a symbolic link: the
// spool and the saved state hold instance data (meta, check output).

// Opens `path` for appending, creating it (0600) when missing; a symbolic
// link at `path` is an error (ELOOP), not followed.
StatusOr<UniqueFd> OpenForAppend(const std::filesystem::path& path);

// Writes all of `data` (retrying short writes and EINTR).
Status WriteAll(int fd, std::string_view data, const std::filesystem::path& path);

// The whole content of `path`; kNotFound when it does not exist.
StatusOr<std::string> ReadWholeFile(const std::filesystem::path& path);

// Replaces `path` with `content` so that a crash at any moment leaves either
// the old or the new file, never a mix: write a temporary file beside it,
// fsync it, rename it over `path`, fsync the directory.
Status ReplaceFileDurably(const std::filesystem::path& path, std::string_view content);

// Creates `dir` and its missing parents with mode 0700; existing ones stay
// as they are (a mounted volume's root is not ours to change).
Status CreatePrivateDirectories(const std::filesystem::path& dir);

// Makes the creation, rename or removal of entries of `dir` durable.
Status SyncDirectory(const std::filesystem::path& dir);

}  // namespace hb

#include "bridge/common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace hb {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Status ErrnoStatus(std::string_view what, const std::filesystem::path& path, int error) {
  std::string message =
      std::string(what) + " " + path.string() + ": " + std::system_category().message(error);
  if (error == ENOSPC || error == EDQUOT || error == EFBIG) {
    return Status::ResourceExhausted(std::move(message));
  }
  if (error == ENOENT) return Status::NotFound(std::move(message));
  return Status::Unavailable(std::move(message));
}

StatusOr<UniqueFd> OpenForAppend(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  return UniqueFd(fd);
}

Status WriteAll(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return Status::Ok();
}

StatusOr<std::string> ReadWholeFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("cannot open", path, errno);
  std::string content;
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path, errno);
    }
    if (got == 0) return content;
    content.append(buffer, static_cast<std::size_t>(got));
  }
}

Status CreatePrivateDirectories(const std::filesystem::path& dir) {
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create directory", partial, errno);
    }
  }
  if (!std::filesystem::is_directory(dir)) {
    return Status::FailedPrecondition(dir.string() + " exists and is not a directory");
  }
  return Status::Ok();
}

Status SyncDirectory(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return ErrnoStatus("cannot sync directory", dir, errno);
  return Status::Ok();
}

Status ReplaceFileDurably(const std::filesystem::path& path, std::string_view content) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    // A leftover of a crash, or a link someone planted to have the bridge
    // overwrite its target: removed (a link itself, never its target), then
    // created exclusively, so the file written is always a new one of ours.
    if (::unlink(temporary.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("cannot remove", temporary, errno);
    }
    UniqueFd fd(
        ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("cannot create", temporary, errno);
    Status written = WriteAll(fd.get(), content, temporary);
    if (written.ok() && ::fsync(fd.get()) != 0) {
      written = ErrnoStatus("cannot sync", temporary, errno);
    }
    if (!written.ok()) {
      ::unlink(temporary.c_str());
      return written;
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    return ErrnoStatus("cannot rename onto", path, error);
  }
  return SyncDirectory(path.has_parent_path() ? path.parent_path() : ".");
}

}  // namespace hb

#include "bridge/router/dead_letter.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <system_error>

namespace hb {

StatusOr<std::unique_ptr<DeadLetterFile>> DeadLetterFile::Open(std::string sink, std::string path,
                                                               Serializer serialize) {
  FilePtr file;
  if (!path.empty()) {
    file.reset(std::fopen(path.c_str(), "ae"));
    if (file == nullptr) {
      return Status::FailedPrecondition("sink " + sink + ": cannot open dead-letter file " + path +
                                        ": " + std::system_category().message(errno));
    }
  }
  return std::make_unique<DeadLetterFile>(std::move(sink), std::move(path), std::move(file),
                                          std::move(serialize));
}

DeadLetterFile::DeadLetterFile(std::string sink, std::string path, FilePtr file,
                               Serializer serialize)
    : sink_(std::move(sink)),
      path_(std::move(path)),
      serialize_(std::move(serialize)),
      file_(std::move(file)) {}

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
  std::lock_guard lock(mutex_);
  if (file_ == nullptr) {
    spdlog::error("sink {}: dead letter (no dead-letter file): {}", sink_, text);
    return;
  }
  text.push_back('\n');
  if (std::fwrite(text.data(), 1, text.size(), file_.get()) != text.size() ||
      std::fflush(file_.get()) != 0) {
    // The disk is full or gone: the log is the last place to keep it.
    spdlog::error("sink {}: cannot write dead-letter file {} ({}); event: {}", sink_, path_,
                  std::system_category().message(errno), text);
  }
}

}  // namespace hb

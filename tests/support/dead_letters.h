#pragma once

// A sink's dead-letter file for router and sink tests, and its lines read
// back. Each event is written as {"id": ...} only: the tests check which
// events were dead-lettered and why, not the wire format.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bridge/router/dead_letter.h"
#include "bridge/router/sink_storage.h"

namespace hb::test_support {

// <dir>/<sink>.dead.jsonl: where DeadLetterStorage() writes.
inline std::filesystem::path DeadLetterPath(const std::filesystem::path& dir,
                                            const std::string& sink) {
  return dir / (sink + ".dead.jsonl");
}

// Storage with a dead-letter file in `dir` and no spool.
inline SinkStorage DeadLetterStorage(const std::filesystem::path& dir, const std::string& sink) {
  auto file =
      DeadLetterFile::Open(sink, DeadLetterPath(dir, sink).string(), [](const Event& event) {
        return nlohmann::json{{"id", event.id}}.dump();
      });
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  return {file.ok() ? std::move(file).value() : nullptr, nullptr};
}

// The dead letters written so far, one object per line: sink, reason,
// attempts, dead_lettered_at and the event.
inline std::vector<nlohmann::json> ReadDeadLetters(const std::filesystem::path& dir,
                                                   const std::string& sink) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(DeadLetterPath(dir, sink));
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

}  // namespace hb::test_support

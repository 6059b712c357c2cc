#include "tests/support/schema/event_schema.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/process/child_process.h"

namespace hb::test_support {

std::string EventSchemaViolations(const std::vector<std::string>& documents, bool data_only) {
  if (documents.empty()) return "";
  static std::atomic<int> next{0};
  const auto file =
      std::filesystem::temp_directory_path() /
      ("hb-events-" + std::to_string(::getpid()) + "-" + std::to_string(next++) + ".jsonl");
  {
    std::ofstream out(file, std::ios::binary);
    for (const std::string& document : documents) out << document << '\n';
  }
  std::vector<std::string> args = {HB_SOURCE_DIR "/tests/support/schema/validate_events.py",
                                   HB_SOURCE_DIR "/docs/contract/events.schema.json",
                                   file.string()};
  if (data_only) args.emplace_back("--data");
  // Debian's python3, which has python3-jsonschema (scripts/bootstrap).
  const RunResult result = RunToCompletion("/usr/bin/python3", args);
  std::filesystem::remove(file);
  if (result.exit_code == 0) return "";
  return "events that break docs/contract/events.schema.json:\n" + result.out + result.err;
}

std::string LogLinesSchemaViolations(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() == '{') lines.push_back(line);
  }
  return EventSchemaViolations(lines);
}

}  // namespace hb::test_support

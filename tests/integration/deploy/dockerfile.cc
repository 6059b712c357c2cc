#include "tests/integration/deploy/dockerfile.h"

#include <gtest/gtest.h>

#include <cctype>
#include <sstream>

namespace hb::deploy_test {

std::vector<Stage> ParseDockerfile(const std::string& text) {
  std::vector<Stage> stages;
  std::istringstream lines(text);
  std::string logical;
  auto flush = [&] {
    const std::size_t start = logical.find_first_not_of(" \t");
    if (start == std::string::npos) return;
    std::istringstream words(logical.substr(start));
    Instruction instruction;
    words >> instruction.keyword;
    for (char& c : instruction.keyword) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    std::getline(words >> std::ws, instruction.args);
    logical.clear();
    if (instruction.keyword == "FROM") {
      std::istringstream from(instruction.args);
      Stage stage;
      std::string as;
      from >> stage.image >> as >> stage.name;
      stages.push_back(stage);
    } else if (stages.empty()) {
      ADD_FAILURE() << instruction.keyword << " before the first FROM";
    } else {
      stages.back().instructions.push_back(instruction);
    }
  };
  for (std::string line; std::getline(lines, line);) {
    const std::size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    const std::size_t last = line.find_last_not_of(" \t\r");
    if (last != std::string::npos && line[last] == '\\') {
      logical += line.substr(0, last) + " ";
      continue;
    }
    logical += line;
    flush();
  }
  flush();
  return stages;
}

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::set<std::string> AptInstalled(const Stage& stage) {
  std::set<std::string> packages;
  for (const std::string& run : stage.Args("RUN")) {
    const auto words = Words(run);
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] != "apt-get" || words[i + 1] != "install") continue;
      for (std::size_t j = i + 2; j < words.size() && words[j] != "&&" && words[j] != ";"; ++j) {
        if (!words[j].starts_with('-')) packages.insert(words[j]);
      }
    }
  }
  return packages;
}

}  // namespace hb::deploy_test

#pragma once

// A Dockerfile read the way BuildKit reads it, enough for tests to check
// its instructions without a Docker engine: stages, instructions with
// their continuation lines joined, and the packages `apt-get install`s.

#include <set>
#include <string>
#include <vector>

namespace hb::deploy_test {

struct Instruction {
  std::string keyword;  // upper case: FROM, RUN, COPY, ...
  std::string args;     // continuation lines joined with spaces
};

struct Stage {
  std::string image;  // FROM's image reference
  std::string name;   // FROM ... AS name; "" when unnamed
  std::vector<Instruction> instructions;

  // The arguments of each of the stage's `keyword` instructions, in order.
  std::vector<std::string> Args(const std::string& keyword) const {
    std::vector<std::string> found;
    for (const Instruction& instruction : instructions) {
      if (instruction.keyword == keyword) found.push_back(instruction.args);
    }
    return found;
  }
};

// The stages in order; comments are dropped (also between continuation
// lines) and `\` continuations joined. Records a test failure for an
// instruction before the first FROM.
std::vector<Stage> ParseDockerfile(const std::string& text);

// `text` split on whitespace.
std::vector<std::string> Words(const std::string& text);

// The package arguments of every `apt-get install` in `stage`.
std::set<std::string> AptInstalled(const Stage& stage);

}  // namespace hb::deploy_test

#include "tests/integration/deploy/debian_packages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <vector>

#include "tests/integration/deploy/deploy_test_support.h"
#include "tests/support/process/child_process.h"

namespace hb::deploy_test {
namespace {

namespace fs = std::filesystem;
using test_support::RunResult;
using test_support::RunToCompletion;
using ::testing::HasSubstr;

std::string Run(const std::string& program, const std::vector<std::string>& args) {
  const fs::path path = FindProgram(program);
  if (path.empty()) {
    ADD_FAILURE() << program << " is not on PATH";
    return "";
  }
  const RunResult result = RunToCompletion(path, args);
  EXPECT_EQ(result.exit_code, 0) << program << " failed: " << result.err;
  return result.out;
}

}  // namespace

// Merged /usr: ldd says /lib/... where dpkg may have recorded /usr/lib/...
// (or the reverse), and the soname is often a symlink to the real file.
std::string OwningPackage(const std::filesystem::path& file) {
  std::vector<fs::path> candidates = {file, fs::weakly_canonical(file)};
  for (std::size_t i = 0, n = candidates.size(); i < n; ++i) {
    const std::string path = candidates[i].string();
    candidates.emplace_back(path.starts_with("/usr/") ? path.substr(4) : "/usr" + path);
  }
  const fs::path dpkg = FindProgram("dpkg");
  for (const fs::path& candidate : candidates) {
    const RunResult owner = RunToCompletion(dpkg, {"-S", candidate.string()});
    if (owner.exit_code != 0) continue;
    // "libssl3:amd64: /usr/lib/x86_64-linux-gnu/libssl.so.3"
    const std::string package = owner.out.substr(0, owner.out.find(": "));
    return package.substr(0, package.find(':'));
  }
  return "";
}

std::map<std::string, std::string> LibraryPackages(const std::filesystem::path& binary) {
  std::map<std::string, std::string> packages;
  static const std::regex kResolved(R"(^\s*(\S+) => (/\S+) \(0x[0-9a-f]+\)$)");
  static const std::regex kLoader(R"(^\s*(/\S+) \(0x[0-9a-f]+\)$)");
  std::istringstream lines(Run("ldd", {binary.string()}));
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    std::string path;
    if (std::regex_match(line, match, kResolved)) {
      path = match[2];
    } else if (std::regex_match(line, match, kLoader)) {
      path = match[1];
    } else {
      // linux-vdso.so.1 lives in the kernel; anything else is unresolved.
      EXPECT_THAT(line, HasSubstr("linux-vdso")) << "ldd could not resolve: " << line;
      continue;
    }
    const std::string package = OwningPackage(path);
    EXPECT_FALSE(package.empty()) << "no Debian package owns " << path;
    packages[path] = package;
  }
  return packages;
}

std::set<std::string> DependencyClosure(const std::set<std::string>& roots) {
  const fs::path dpkg_query = FindProgram("dpkg-query");
  std::set<std::string> closure;
  std::vector<std::string> pending(roots.begin(), roots.end());
  auto installed = [&](const std::string& package) {
    const RunResult status = RunToCompletion(dpkg_query, {"-W", "-f=${db:Status-Status}", package});
    return status.exit_code == 0 && status.out == "installed";
  };
  static const std::regex kName(R"(^\s*([a-z0-9][a-z0-9+.-]*))");
  while (!pending.empty()) {
    const std::string package = pending.back();
    pending.pop_back();
    if (!closure.insert(package).second) continue;
    const RunResult fields =
        RunToCompletion(dpkg_query, {"-W", "-f=${Depends}, ${Pre-Depends}", package});
    if (fields.exit_code != 0) continue;  // not installed here: nothing to follow
    std::istringstream clauses(fields.out);
    for (std::string clause; std::getline(clauses, clause, ',');) {
      std::istringstream alternatives(clause);
      for (std::string alternative; std::getline(alternatives, alternative, '|');) {
        std::smatch match;
        if (!std::regex_search(alternative, match, kName)) continue;
        if (installed(match[1])) {
          pending.push_back(match[1]);
          break;
        }
      }
    }
  }
  return closure;
}

}  // namespace hb::deploy_test

#pragma once

// This machine's Debian package database, asked the questions the image
// test has: which package owns each library a binary loads, and what a set
// of packages pulls in. Meaningful for an image only when this machine
// runs the image's Debian release.

#include <filesystem>
#include <map>
#include <set>
#include <string>

namespace hb::deploy_test {

// The Debian package that installed `file`, or "" when dpkg knows none.
std::string OwningPackage(const std::filesystem::path& file);

// Library path -> owning package, for every library `ldd binary` resolves.
// Records a test failure for a library ldd cannot resolve or dpkg cannot
// place.
std::map<std::string, std::string> LibraryPackages(const std::filesystem::path& binary);

// `roots` and everything they depend on (Depends, Pre-Depends), as dpkg
// records it for the installed packages; of alternatives, the first one
// installed here counts.
std::set<std::string> DependencyClosure(const std::set<std::string>& roots);

}  // namespace hb::deploy_test

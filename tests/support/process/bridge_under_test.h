#pragma once

// The health-bridge binary of this build, for the tests that run it: their
// CMake target defines HB_BRIDGE_BINARY. An inline variable, so test files
// that are parsed together (scripts/lint's groups) share one definition.

#include <filesystem>

namespace hb::test_support {

inline const std::filesystem::path kBridge = HB_BRIDGE_BINARY;

}  // namespace hb::test_support

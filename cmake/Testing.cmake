if(NOT HB_BUILD_TESTS)
  return()
endif()
enable_testing()
find_package(GTest REQUIRED)
include(GoogleTest)

# One precompiled header shared by every test binary: GoogleTest, GoogleMock,
# nlohmann/json and cpp-httplib (with its <regex>) cost seconds to parse in
# each test file, which on 2 cores and three builds (release, ASan, TSan)
# adds up to minutes (cpp-httplib in it: 19% less compile time for three
# heavy ASan test files). Every test gets cpp-httplib's definitions, so
# that each compiles with the header's macros.
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/hb_test_pch.cc CONTENT "// precompiled header host\n")
add_library(hb_test_pch STATIC ${PROJECT_BINARY_DIR}/hb_test_pch.cc)
target_link_libraries(hb_test_pch PRIVATE GTest::gmock nlohmann_json::nlohmann_json
                                          PkgConfig::HTTPLIB)
target_compile_definitions(hb_test_pch PRIVATE HB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                               HB_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_precompile_headers(hb_test_pch PRIVATE <gtest/gtest.h> <gmock/gmock.h>
                                              <nlohmann/json.hpp> <httplib.h>)
hb_target_defaults(hb_test_pch)
# Test code is compiled at -O0 in optimised builds (the libraries under
# test keep the build type's level): how fast a test's own code runs does
# not matter next to its peers and deadlines, and -O0 compiled four heavy
# test files 22% faster than -O1 here (gcc). ThreadSanitizer's pass keeps
# -O1, the level its manual asks for. The header must match the files, or
# the compiler ignores it.
set(HB_TEST_OPTIMIZATION "")
if(HB_SANITIZERS MATCHES "thread")
  set(HB_TEST_OPTIMIZATION -O1)
elseif(NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(HB_TEST_OPTIMIZATION -O0)
endif()
target_compile_options(hb_test_pch PRIVATE ${HB_TEST_OPTIMIZATION})

# Every test binary labelled "concurrent": the ThreadSanitizer pass builds
# only these.
add_custom_target(hb_concurrent_tests)

# Sanitizer settings travel with the tests, so ctest run by hand in a
# sanitizer build checks exactly what scripts/test checks.
set(HB_TEST_ENVIRONMENT "")
if(HB_SANITIZERS MATCHES "thread")
  set(HB_TEST_ENVIRONMENT
      "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${PROJECT_SOURCE_DIR}/tests/support/sanitizers/tsan.supp")
endif()

# hb_test(name SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s]): one GoogleTest
# binary whose cases ctest lists one by one. Discovery runs at test time so a
# sanitizer build does not execute tests while it compiles.
function(hb_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main
                                        PkgConfig::HTTPLIB)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE HB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             HB_BINARY_DIR="${PROJECT_BINARY_DIR}")
  hb_target_defaults(${name})
  if(TARGET hb_test_pch)
    target_compile_options(${name} PRIVATE ${HB_TEST_OPTIMIZATION})
    target_precompile_headers(${name} REUSE_FROM hb_test_pch)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  if("concurrent" IN_LIST ARG_LABELS)
    add_dependencies(hb_concurrent_tests ${name})
  endif()
  # COST: ctest -j starts the tests allowed longest first, so a long one
  # does not start last and hold up the pass (a clean checkout has no
  # timings of ctest's own to go by).
  set(properties TIMEOUT ${ARG_TIMEOUT} COST ${ARG_TIMEOUT})
  if(ARG_LABELS)
    list(APPEND properties LABELS "${ARG_LABELS}")
  endif()
  if(HB_TEST_ENVIRONMENT)
    list(APPEND properties ENVIRONMENT "${HB_TEST_ENVIRONMENT}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${properties})
endfunction()

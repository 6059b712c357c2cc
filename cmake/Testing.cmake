if(NOT HB_BUILD_TESTS AND NOT HB_FUZZ)
  return()
endif()
enable_testing()
find_package(GTest REQUIRED)
include(GoogleTest)

# Every test binary labelled "concurrent": the ThreadSanitizer pass builds
# only these.
add_custom_target(hb_concurrent_tests)

# hb_test(name SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s]): one GoogleTest
# binary whose cases ctest lists one by one. Discovery runs at test time so a
# sanitizer build does not execute tests while it compiles.
function(hb_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE HB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             HB_BINARY_DIR="${PROJECT_BINARY_DIR}")
  hb_target_defaults(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  if("concurrent" IN_LIST ARG_LABELS)
    add_dependencies(hb_concurrent_tests ${name})
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
                       PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()

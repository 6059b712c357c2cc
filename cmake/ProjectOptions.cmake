option(HB_BUILD_TESTS "Build the test suite" ON)
option(HB_BUILD_BENCHMARKS "Build the benchmarks in bench/" ON)
option(HB_WERROR "Treat compiler warnings as errors" OFF)
option(HB_FUZZ "Build the fuzz targets as libFuzzer binaries, everything under ASan+UBSan (clang)" OFF)
# Measured on the 2-core machines: the libraries and the bridge build in
# 88 s instead of 140 s cold. OFF rebuilds only the file that changed.
option(HB_UNITY_BUILD "Compile each library as one unit (faster cold builds)" ON)
set(HB_SANITIZERS "" CACHE STRING "Comma-separated -fsanitize list, e.g. address,undefined or thread")

if(HB_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "HB_FUZZ needs clang (CXX=clang++), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  # Everything is checked, and the same build runs the whole suite under the
  # same sanitizers, so one build serves both (scripts/test). Coverage for
  # libFuzzer goes only where inputs are parsed: the product's libraries and
  # the targets (hb_library, tests/fuzz), not the tests and their peers,
  # which the fuzzers never run (measured: 7% of a test file's compile time
  # here).
  set(HB_SANITIZERS "address,undefined")
endif()

if(HB_SANITIZERS)
  add_compile_options(-fsanitize=${HB_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${HB_SANITIZERS})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC's documented false positives under -fsanitize (libstdc++'s own
    # std::regex and std::function trip it); -Werror would fail on them.
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
endif()

# lld links a test binary about five times faster than GNU ld (an ASan one:
# 2.0 s against 0.4 s), most of a minute per pass of scripts/test.
include(CheckLinkerFlag)
check_linker_flag(CXX -fuse-ld=lld HB_HAVE_LLD)
if(HB_HAVE_LLD)
  add_link_options(-fuse-ld=lld)
endif()

find_program(HB_CCACHE ccache)
if(HB_CCACHE)
  # The sloppiness lets ccache cache the files that use the tests'
  # precompiled header (cmake/Testing.cmake) instead of skipping them.
  set(HB_CCACHE_LAUNCHER ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime ${HB_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${HB_CCACHE_LAUNCHER})
  set(CMAKE_C_COMPILER_LAUNCHER ${HB_CCACHE_LAUNCHER})
endif()

# Applies the project's warning set to one of our own targets (never to
# third-party code).
function(hb_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                            -Wold-style-cast -Wcast-align -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # Checks the GUARDED_BY/REQUIRES annotations (bridge/common/mutex.h);
    # gcc has no such analysis and the macros are empty there. An error
    # even without HB_WERROR: scripts/test's clang pass (ASan+UBSan) is
    # built without it, and a lock the analysis finds missing is a race,
    # never noise.
    target_compile_options(${target} PRIVATE -Wthread-safety -Werror=thread-safety)
  endif()
  if(HB_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# hb_library(name SOURCES ... DEPS ...): one library per folder, included
# from the repository root (#include "bridge/state/transition_engine.h").
function(hb_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES UNITY_BUILD ${HB_UNITY_BUILD} UNITY_BUILD_BATCH_SIZE 16)
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  hb_target_defaults(${name})
  set(tests_dir "${PROJECT_SOURCE_DIR}/tests")
  cmake_path(IS_PREFIX tests_dir "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE in_tests)
  if(HB_FUZZ AND NOT in_tests)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()

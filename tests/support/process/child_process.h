#pragma once

// Runs a real executable as a child process for end-to-end tests (the
// bridge binary, the standalone test peers): captured stdout/stderr, a
// chosen environment, signals, and a bounded wait. Stopped by PID.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hb::test_support {

class ChildProcess {
 public:
  struct Options {
    // Set or, with std::nullopt, removed; the rest is inherited.
    std::map<std::string, std::optional<std::string>> env;
    std::filesystem::path working_directory;  // Default: inherited
    // stdout goes to a pipe (stdout_pipe()) instead of a file, for readers
    // that timestamp each line as it is written. Default: false.
    bool pipe_stdout = false;
  };

  // Starts `program` with `args`; stdout and stderr go to temporary files
  // readable at any time. Aborts the test binary when it cannot spawn.
  ChildProcess(const std::filesystem::path& program, const std::vector<std::string>& args,
               const Options& options);
  ChildProcess(const std::filesystem::path& program, const std::vector<std::string>& args)
      : ChildProcess(program, args, Options{}) {}
  ~ChildProcess();  // SIGKILLs a child still running

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The read end of the child's stdout with Options::pipe_stdout, else -1.
  int stdout_pipe() const { return stdout_pipe_; }
  void Signal(int signal);
  // The exit code (128 + signal when killed by one), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

  std::string Stdout() const;
  std::string Stderr() const;
  // Polls stdout (or stderr) until it contains `text`.
  bool WaitForStdout(const std::string& text, std::chrono::milliseconds timeout) const;
  bool WaitForStderr(const std::string& text, std::chrono::milliseconds timeout) const;

 private:
  pid_t pid_ = -1;
  int stdout_pipe_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path directory_;
};

// Runs to completion (bounded by `timeout`) and returns the exit code and
// output; exit code -1 when it timed out and was killed.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunToCompletion(const std::filesystem::path& program,
                          const std::vector<std::string>& args,
                          const ChildProcess::Options& options = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace hb::test_support

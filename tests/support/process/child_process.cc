#include "tests/support/process/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace hb::test_support {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool PollFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

ChildProcess::ChildProcess(const std::filesystem::path& program,
                           const std::vector<std::string>& args, const Options& options) {
  std::string pattern = (std::filesystem::temp_directory_path() / "hb-child-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  directory_ = pattern;

  std::map<std::string, std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const std::size_t equals = text.find('=');
    if (equals != std::string::npos) env[text.substr(0, equals)] = text.substr(equals + 1);
  }
  for (const auto& [name, value] : options.env) {
    if (value) {
      env[name] = *value;
    } else {
      env.erase(name);
    }
  }
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_strings{program.string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_strings.size() + 1);
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string out = (directory_ / "stdout").string();
  const std::string err = (directory_ / "stderr").string();
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  int pipe_ends[2] = {-1, -1};
  if (options.pipe_stdout) {
    if (::pipe2(pipe_ends, O_CLOEXEC) != 0) std::abort();
    posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!options.working_directory.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_directory.c_str());
  }
  // The child must not inherit a blocked SIGTERM/SIGINT mask from a test
  // that blocks them, or it could not be stopped.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  const int error = posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) std::abort();
  if (options.pipe_stdout) {
    ::close(pipe_ends[1]);
    stdout_pipe_ = pipe_ends[0];
  }
}

ChildProcess::~ChildProcess() {
  if (Running()) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  if (stdout_pipe_ >= 0) ::close(stdout_pipe_);
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

void ChildProcess::Signal(int signal) {
  if (!exit_code_) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  PollFor([&] { return !Running(); }, timeout);
  return exit_code_;
}

bool ChildProcess::Running() {
  if (exit_code_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

std::string ChildProcess::Stdout() const { return ReadFile(directory_ / "stdout"); }
std::string ChildProcess::Stderr() const { return ReadFile(directory_ / "stderr"); }

bool ChildProcess::WaitForStdout(const std::string& text, std::chrono::milliseconds timeout) const {
  return PollFor([&] { return Stdout().find(text) != std::string::npos; }, timeout);
}

bool ChildProcess::WaitForStderr(const std::string& text, std::chrono::milliseconds timeout) const {
  return PollFor([&] { return Stderr().find(text) != std::string::npos; }, timeout);
}

RunResult RunToCompletion(const std::filesystem::path& program,
                          const std::vector<std::string>& args,
                          const ChildProcess::Options& options, std::chrono::milliseconds timeout) {
  ChildProcess child(program, args, options);
  RunResult result;
  if (auto code = child.Wait(timeout)) result.exit_code = *code;
  result.out = child.Stdout();
  result.err = child.Stderr();
  return result;
}

}  // namespace hb::test_support

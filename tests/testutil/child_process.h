#pragma once
// A binary of this build run by a test as a child process: stdout and stderr go to a log file,
// and the destructor kills (SIGKILL) and reaps it if it still runs, so a failing test leaves no
// process behind.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/strings.h"
#include "tests/testutil/wait.h"

extern char** environ;

namespace zm::testutil {

class ChildProcess {
 public:
  // $ZMESH_BUILD_DIR/bin/<name>, else bin/<name> of the build directory this test runs from
  // (tests are built into <build>/tests/).
  static std::string BuildBinary(std::string_view name) {
    if (const char* b = std::getenv("ZMESH_BUILD_DIR")) return StrCat(b, "/bin/", name);
    return (std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "bin" /
            std::string(name))
        .string();
  }

  // Runs `binary` with `args`; `env` ("NAME=value") is added to this process's environment,
  // replacing a variable of the same name.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(std::string binary,
                                                             std::vector<std::string> args,
                                                             std::string log_path,
                                                             std::vector<std::string> env = {}) {
    // Everything is prepared before fork(): the child of a threaded process may only call
    // async-signal-safe functions.
    std::vector<std::string> environment = std::move(env);
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view var(*e);
      const std::string_view name = var.substr(0, var.find('='));
      bool replaced = false;
      for (const std::string& own : environment) replaced |= own.starts_with(StrCat(name, "="));
      if (!replaced) environment.emplace_back(var);
    }
    std::vector<char*> argv{binary.data()};
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (std::string& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0) return absl::InternalError(StrCat("open ", log_path, ": ", std::strerror(errno)));
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(log, 1);  // dup2 clears O_CLOEXEC on the copies
      ::dup2(log, 2);
      ::execve(binary.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(log);
    if (pid < 0) return absl::InternalError(StrCat("fork: ", std::strerror(errno)));
    return std::unique_ptr<ChildProcess>(new ChildProcess(pid, std::move(log_path)));
  }

  ~ChildProcess() {
    if (!Exited()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reaps the child if it has exited, without blocking; true once it has.
  bool Exited() {
    if (exit_code_ >= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }
  // The exit status (128 + the signal when killed); -1 when it has not exited by `deadline`.
  int WaitExit(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    return WaitFor([this] { return Exited(); }, deadline) ? exit_code_ : -1;
  }
  bool Signal(int sig) { return !Exited() && ::kill(pid_, sig) == 0; }

  // What it wrote to stdout and stderr so far.
  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  const pid_t pid_;
  const std::string log_path_;
  int exit_code_ = -1;
};

}  // namespace zm::testutil

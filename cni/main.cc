// zmesh-cni: the chained CNI plugin (see cni/plugin.h). The container runtime runs it with the
// CNI_* environment and the network configuration on stdin; it prints the result (or a CNI error
// object) on stdout.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "cni/plugin.h"

int main() {
  signal(SIGPIPE, SIG_IGN);
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  zm::cni::Outcome out =
      zm::cni::Execute(zm::cni::Environment::FromProcess(), input, zm::cni::CallAgent);
  std::fwrite(out.stdout_text.data(), 1, out.stdout_text.size(), stdout);
  std::fwrite(out.stderr_text.data(), 1, out.stderr_text.size(), stderr);
  std::fflush(stdout);
  return out.exit_code;
}

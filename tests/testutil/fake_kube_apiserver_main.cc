// fake-kube-apiserver: the test fake (fake_kube_apiserver.h) as a process, for the netns lab
// (tests/lab/cluster_*.sh): the real agent in cluster mode talks to it over HTTP inside a node's
// network namespace. Scripts drive it through the API itself, as kubectl would (POST, PATCH with
// application/merge-patch+json, DELETE), and misbehave it through POST /fake/<knob>
// (compact, expire-watches, break-watches, end-watches, bookmarks).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "common/base/signals.h"
#include "tests/testutil/fake_kube_apiserver.h"

int main(int argc, char** argv) {
  const sigset_t set = zm::BlockStopSignals();

  CLI::App app{"fake-kube-apiserver: a scripted Kubernetes API server on 127.0.0.1 (tests only)"};
  int port = 0;
  std::string token;
  std::string url_file;
  app.add_option("--port", port, "port on 127.0.0.1 (0: ephemeral)")->check(CLI::Range(0, 65535));
  app.add_option("--token", token, "bearer token every request must carry (empty: none)");
  app.add_option("--url-file", url_file, "write the server's URL here once it listens");
  CLI11_PARSE(app, argc, argv);

  zm::testutil::FakeKubeApiServer server(
      {.token = token, .port = static_cast<uint16_t>(port), .control_endpoints = true});
  if (absl::Status st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "fake-kube-apiserver: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  if (!url_file.empty()) {
    // Written whole, then renamed: a reader never sees half a URL.
    const std::string tmp = url_file + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << server.url() << "\n";
    if (std::rename(tmp.c_str(), url_file.c_str()) != 0) {
      std::perror("fake-kube-apiserver: rename url file");
      return 1;
    }
  }
  std::printf("fake-kube-apiserver listening on %s\n", server.url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  return 0;
}

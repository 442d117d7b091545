// http_load: a small HTTP/1.1 keep-alive load generator for the benchmark scripts (the same
// client for every row of a table). N connections, each on its own thread, send GET requests
// back to back for a fixed time; per request the latency from the first byte written to the
// last byte of the response. Prints one JSON object: requests, errors, seconds, rps, p50_us,
// p99_us, and the status counts.
//
//   http_load --addr IP:PORT [--path /bench] [--header 'Name: value' ...] [--connections 16]
//             [--seconds 10]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  std::vector<uint32_t> latencies_us;
  std::map<int, uint64_t> statuses;
  uint64_t errors = 0;
};

int Connect(const sockaddr_in& addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads one response (Content-Length framed); its status, or -1. `buf` keeps extra bytes.
int ReadResponse(int fd, std::string& buf) {
  size_t head_end;
  char tmp[16384];
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
  if (buf.size() < 12 || buf.compare(0, 5, "HTTP/") != 0) return -1;
  int status = std::atoi(buf.c_str() + 9);
  size_t length = 0;
  std::string head = buf.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t cl = head.find("\r\ncontent-length:");
  if (cl != std::string::npos) length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
  const size_t total = head_end + 4 + length;
  while (buf.size() < total) {
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
  buf.erase(0, total);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr_text, path = "/bench";
  std::vector<std::string> headers;
  int connections = 16;
  double seconds = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "http_load: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--addr") addr_text = next();
    else if (a == "--path") path = next();
    else if (a == "--header") headers.push_back(next());
    else if (a == "--connections") connections = std::atoi(next().c_str());
    else if (a == "--seconds") seconds = std::atof(next().c_str());
    else {
      std::fprintf(stderr, "http_load: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  size_t colon = addr_text.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos ||
      inet_pton(AF_INET, addr_text.substr(0, colon).c_str(), &addr.sin_addr) != 1 ||
      connections < 1 || seconds <= 0) {
    std::fprintf(stderr, "http_load: --addr IPV4:PORT is required\n");
    return 2;
  }
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(addr_text.c_str() + colon + 1)));
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + addr_text + "\r\n";
  for (const std::string& h : headers) request += h + "\r\n";
  request += "\r\n";

  std::vector<Result> results(static_cast<size_t>(connections));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      Result& r = results[static_cast<size_t>(t)];
      r.latencies_us.reserve(1 << 16);
      int fd = -1;
      std::string buf;
      while (!stop.load(std::memory_order_relaxed)) {
        if (fd < 0) {
          fd = Connect(addr);
          buf.clear();
          if (fd < 0) {
            ++r.errors;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
          }
        }
        const auto t0 = Clock::now();
        if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
          ++r.errors;
          close(fd);
          fd = -1;
          continue;
        }
        int status = ReadResponse(fd, buf);
        if (status < 0) {
          ++r.errors;
          close(fd);
          fd = -1;
          continue;
        }
        r.latencies_us.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
        ++r.statuses[status];
      }
      if (fd >= 0) close(fd);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<uint32_t> all;
  std::map<int, uint64_t> statuses;
  uint64_t errors = 0;
  for (const Result& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    for (auto [s, n] : r.statuses) statuses[s] += n;
    errors += r.errors;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> uint32_t {
    if (all.empty()) return 0;
    return all[std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())))];
  };
  std::printf("{\"requests\": %zu, \"errors\": %llu, \"seconds\": %.3f, \"rps\": %.1f, "
              "\"p50_us\": %u, \"p99_us\": %u, \"statuses\": {",
              all.size(), static_cast<unsigned long long>(errors), elapsed,
              static_cast<double>(all.size()) / elapsed, pct(0.50), pct(0.99));
  bool first = true;
  for (auto [s, n] : statuses) {
    std::printf("%s\"%d\": %llu", first ? "" : ", ", s, static_cast<unsigned long long>(n));
    first = false;
  }
  std::printf("}}\n");
  return 0;
}

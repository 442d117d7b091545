// RequestHead helpers and what the two engines share.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>

#include "waypoint/http/internal.h"

namespace zm::waypoint {

using internal::EqualsIgnoreCase;

std::optional<std::string_view> RequestHead::Find(std::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

size_t RequestHead::Remove(std::string_view name) {
  auto it = std::remove_if(headers.begin(), headers.end(),
                           [&](const HttpHeader& h) { return EqualsIgnoreCase(h.name, name); });
  size_t n = static_cast<size_t>(headers.end() - it);
  headers.erase(it, headers.end());
  return n;
}

void RequestHead::Set(std::string_view name, std::string_view value) {
  auto it = std::find_if(headers.begin(), headers.end(),
                         [&](const HttpHeader& h) { return EqualsIgnoreCase(h.name, name); });
  if (it == headers.end()) {
    headers.push_back({std::string(name), std::string(value)});
    return;
  }
  it->value.assign(value);
  auto rest = std::remove_if(it + 1, headers.end(),
                             [&](const HttpHeader& h) { return EqualsIgnoreCase(h.name, name); });
  headers.erase(rest, headers.end());
}

namespace internal {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsValidMethod(std::string_view method) {
  if (method.empty()) return false;
  return std::all_of(method.begin(), method.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool IsValidFieldValue(std::string_view value) {
  return std::none_of(value.begin(), value.end(),
                      [](char c) { return c == '\0' || c == '\r' || c == '\n'; });
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsHopByHop(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive", "te", "transfer-encoding", "upgrade", "http2-settings",
  };
  for (std::string_view n : kNames) {
    if (EqualsIgnoreCase(name, n)) return true;
  }
  return name.size() >= 6 && EqualsIgnoreCase(name.substr(0, 6), "proxy-");
}

void StripHopByHop(std::vector<HttpHeader>& headers) {
  // Headers named by Connection go too (RFC 9110 §7.6.1). In place: no allocation unless a
  // Connection header names something.
  std::vector<std::string> listed;
  bool any = false;
  for (const HttpHeader& h : headers) {
    if (!IsHopByHop(h.name)) continue;
    any = true;
    if (!EqualsIgnoreCase(h.name, "connection")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view token = TrimOws(v.substr(0, comma));
      if (!token.empty()) listed.emplace_back(token);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  if (!any) return;
  auto drop = [&](const HttpHeader& h) {
    return IsHopByHop(h.name) ||
           std::any_of(listed.begin(), listed.end(),
                       [&](const std::string& t) { return EqualsIgnoreCase(h.name, t); });
  };
  headers.erase(std::remove_if(headers.begin(), headers.end(), drop), headers.end());
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 400 ? "OK" : (status < 500 ? "Client Error" : "Server Error");
  }
}

void AppendLocalResponse(std::string& out, int status, std::string_view body,
                         const std::vector<HttpHeader>& headers, bool close) {
  char num[24];
  out.append("HTTP/1.1 ");
  auto r = std::to_chars(num, num + sizeof(num), status);
  out.append(num, r.ptr);
  out.push_back(' ');
  out.append(ReasonPhrase(status));
  out.append("\r\ncontent-type: text/plain\r\ncontent-length: ");
  r = std::to_chars(num, num + sizeof(num), body.size());
  out.append(num, r.ptr);
  out.append("\r\n");
  for (const HttpHeader& h : headers) {
    // A filter's header that could break the framing is not written.
    if (h.name.empty() || !IsValidFieldValue(h.value) || !IsValidFieldValue(h.name) ||
        IsHopByHop(h.name) || EqualsIgnoreCase(h.name, "content-length") ||
        EqualsIgnoreCase(h.name, "content-type")) {
      continue;
    }
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (close) out.append("connection: close\r\n");
  out.append("\r\n");
  out.append(body);
}

uint64_t NextConnId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void Deadlines::Arm(Clock::time_point at, std::function<void()> on_fire) {
  if (armed_ && at_ <= at) return;  // the armed expiry comes first and re-arms
  armed_ = true;
  at_ = at;
  uint64_t gen = ++gen_;
  timer_.expires_at(at);
  timer_.async_wait([this, gen, on_fire = std::move(on_fire)](const asio::error_code& ec) {
    // `this` lives as long as its owner, which `on_fire` keeps alive.
    if (ec || gen != gen_) return;
    armed_ = false;
    on_fire();
  });
}

void Deadlines::Cancel() {
  ++gen_;
  armed_ = false;
  timer_.cancel();
}

void ByteQueue::Append(const uint8_t* p, size_t n) {
  if (n == 0) return;
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ + n > buf_.size()) {
    if (begin_ > 0) {  // slide the unread bytes to the front first
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ + n > buf_.size()) buf_.resize(end_ + n);
  }
  std::memcpy(buf_.data() + end_, p, n);
  end_ += n;
}

void ByteQueue::Consume(size_t n) {
  begin_ += std::min(n, size());
  if (begin_ == end_) begin_ = end_ = 0;
}

}  // namespace internal
}  // namespace zm::waypoint

#include "common/jwt/jwks_fetcher.h"

#include <algorithm>
#include <utility>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/http/curl.h"

namespace zm::jwt {
namespace {

using std::chrono::milliseconds;

spdlog::logger& L() { return Log("jwt"); }

struct Transfer {
  std::string body;
  size_t limit = 0;
  bool too_large = false;
  const std::atomic<bool>* stop = nullptr;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->body.size() + bytes > t->limit) {
    t->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(data, bytes);
  return bytes;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->stop != nullptr && t->stop->load() ? 1 : 0;  // non-zero aborts
}

}  // namespace

milliseconds NextFetchDelay(const JwksFetcherOptions& o, int failures) {
  if (failures <= 0) return o.refresh_interval;
  milliseconds d = o.initial_backoff;
  for (int i = 1; i < failures && d < o.max_backoff; ++i) d *= 2;
  return std::min({d, o.max_backoff, o.refresh_interval});
}

absl::StatusOr<std::string> FetchDocument(const std::string& uri, const JwksFetcherOptions& o,
                                          const std::atomic<bool>* stop) {
  auto fail = [&](std::string_view what) {
    return absl::UnavailableError(StrCat("GET ", uri, ": ", what));
  };
  if (!uri.starts_with("https://") && !uri.starts_with("http://")) {
    return fail("not an http(s) URL");
  }
  if (absl::Status init = http::InitCurl(); !init.ok()) return init;
  http::CurlEasyPtr curl(curl_easy_init());
  if (curl == nullptr) return fail("curl_easy_init failed");
  Transfer t{.limit = o.max_body_bytes, .stop = stop};
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, uri.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(o.max_body_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "zmesh-waypoint-jwks");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o.verify_tls ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o.verify_tls ? 2L : 0L);
  if (!o.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());

  const CURLcode rc = curl_easy_perform(c);
  if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    return fail(StrCat("body larger than ", o.max_body_bytes, " bytes"));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return fail(StrCat("timed out after ", o.timeout.count(), " ms"));
  }
  if (rc != CURLE_OK) {
    return fail(StrCat(curl_easy_strerror(rc), errbuf[0] ? StrCat(": ", errbuf) : std::string()));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return fail(StrCat("HTTP ", status, " (want 200)"));
  return std::move(t.body);
}

JwksFetcher::JwksFetcher(std::string uri, JwksFetcherOptions options, const Clock& clock)
    : uri_(std::move(uri)), options_(std::move(options)), clock_(clock) {
  status_.uri = uri_;
  status_.verify_tls = options_.verify_tls;
  if (!options_.verify_tls) {
    L().warn("JWKS {}: TLS certificate verification is OFF (verify_tls=false): anyone on the path "
             "can supply keys",
             uri_);
  }
  thread_ = std::thread([this] { Run(); });
}

JwksFetcher::~JwksFetcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

absl::StatusOr<std::shared_ptr<const Jwks>> JwksFetcher::Current() const {
  std::lock_guard lock(mu_);
  if (jwks_ != nullptr) return jwks_;
  return absl::UnavailableError(StrCat(
      "JWKS ", uri_, " not fetched yet: ",
      status_.last_error.empty() ? std::string("first fetch in progress") : status_.last_error));
}

JwksFetcherStatus JwksFetcher::Status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void JwksFetcher::RefreshNow() {
  {
    std::lock_guard lock(mu_);
    refresh_requested_ = true;
  }
  cv_.notify_all();
}

bool JwksFetcher::WaitForFetches(uint64_t count, milliseconds deadline) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return status_.fetches >= count; });
}

void JwksFetcher::RaiseTimeout(milliseconds timeout) {
  std::lock_guard lock(mu_);
  options_.timeout = std::max(options_.timeout, timeout);
}

void JwksFetcher::Run() {
  int failures = 0;
  while (!stop_) {
    JwksFetcherOptions options;
    {
      std::lock_guard lock(mu_);
      options = options_;
    }
    auto body = FetchDocument(uri_, options, &stop_);
    absl::StatusOr<Jwks> parsed =
        body.ok() ? Jwks::Parse(*body) : absl::StatusOr<Jwks>(body.status());
    if (body.ok() && !parsed.ok()) {
      parsed = absl::UnavailableError(StrCat("JWKS from ", uri_, ": ", parsed.status().message()));
    }
    if (stop_) break;
    failures = parsed.ok() ? 0 : failures + 1;
    std::string error;
    bool have_keys = false;
    size_t keys = 0;
    {
      std::lock_guard lock(mu_);
      const auto now = clock_.Now();
      status_.last_attempt = now;
      ++status_.fetches;
      if (parsed.ok()) {
        jwks_ = std::make_shared<const Jwks>(*std::move(parsed));
        status_.last_success = now;
        status_.last_error.clear();
        status_.keys = jwks_->keys.size();
      } else {
        status_.last_error = std::string(parsed.status().message());
      }
      status_.consecutive_failures = failures;
      error = status_.last_error;
      have_keys = jwks_ != nullptr;
      keys = status_.keys;
    }
    cv_.notify_all();
    if (failures > 0) {
      L().warn("JWKS {}: {} (attempt {}; {})", uri_, error, failures,
               have_keys ? "keeping the previous key set" : "no key set yet: tokens fail");
    } else {
      L().debug("JWKS {}: {} keys", uri_, keys);
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, NextFetchDelay(options, failures),
                 [&] { return stop_.load() || refresh_requested_; });
    refresh_requested_ = false;
  }
}

JwksFetcherRegistry::JwksFetcherRegistry(JwksFetcherOptions defaults, const Clock& clock)
    : defaults_(std::move(defaults)), clock_(clock) {}

std::shared_ptr<JwksFetcher> JwksFetcherRegistry::Get(const std::string& uri,
                                                      milliseconds timeout) {
  std::lock_guard lock(mu_);
  auto& f = fetchers_[uri];
  if (f == nullptr) {
    JwksFetcherOptions o = defaults_;
    if (timeout.count() > 0) o.timeout = timeout;
    f = std::make_shared<JwksFetcher>(uri, o, clock_);
  } else if (timeout.count() > 0) {
    f->RaiseTimeout(timeout);
  }
  return f;
}

std::shared_ptr<const JwksSource> JwksFetcherRegistry::ForRule(const JwtRuleSpec& rule) {
  if (rule.jwks_uri.empty()) return nullptr;
  return Get(rule.jwks_uri, milliseconds(rule.timeout_ms));
}

std::vector<std::string> JwksFetcherRegistry::Sweep() {
  std::vector<std::shared_ptr<JwksFetcher>> dropped;
  std::vector<std::string> uris;
  {
    std::lock_guard lock(mu_);
    for (auto it = fetchers_.begin(); it != fetchers_.end();) {
      if (it->second.use_count() == 1) {
        uris.push_back(it->first);
        dropped.push_back(std::move(it->second));
        it = fetchers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  dropped.clear();  // joins their threads, outside the lock
  return uris;
}

std::vector<JwksFetcherStatus> JwksFetcherRegistry::Status() const {
  std::vector<JwksFetcherStatus> out;
  std::lock_guard lock(mu_);
  for (const auto& [uri, f] : fetchers_) out.push_back(f->Status());
  return out;
}

}  // namespace zm::jwt

#pragma once
// libcurl handles (CONVENTIONS 2) and its one-time global initialization, shared by the clients
// built on libcurl (the Kubernetes client, the JWKS fetcher). The only place their cleanup
// functions appear. Header-only: a library using it links CURL::libcurl itself.

#include <curl/curl.h>

#include <memory>

#include "absl/status/status.h"
#include "common/base/strings.h"

namespace zm::http {

struct CurlEasyFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlMultiFree {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct CurlSlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyFree>;
using CurlMultiPtr = std::unique_ptr<CURLM, CurlMultiFree>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistFree>;

// curl_global_init, once per process (thread-safe through the static's initialization).
inline absl::Status InitCurl() {
  static const absl::Status status = [] {
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    return c == CURLE_OK ? absl::OkStatus()
                         : absl::InternalError(StrCat("curl_global_init: ", curl_easy_strerror(c)));
  }();
  return status;
}

}  // namespace zm::http

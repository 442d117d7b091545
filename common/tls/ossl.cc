#include "common/tls/ossl.h"

#include <openssl/err.h>

#include "common/base/strings.h"

namespace zm::tls {

std::string OpenSslErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ")";
    }
  }
  if (out.empty()) out = "no OpenSSL error";
  return out;
}

void ClearOpenSslErrors() { ERR_clear_error(); }

absl::Status OpenSslError(std::string_view what) {
  return absl::InternalError(StrCat(what, ": ", OpenSslErrors()));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace zm::tls

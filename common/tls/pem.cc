#include "common/tls/pem.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "common/base/fd.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::tls {
namespace {

constexpr size_t kMaxFileSize = 1 << 20;

// Never prompt on a terminal for a pass phrase: encrypted keys are refused.
int NoPassphrase(char*, int, int, void*) { return -1; }

BioPtr MemBuf(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<BioPtr> NewMemBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return OpenSslError("BIO_new");
  return bio;
}

// True when the last PEM read failed only because no further PEM block was found.
bool AtEndOfPem() {
  unsigned long e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

std::string Octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

}  // namespace

absl::StatusOr<EvpPkeyPtr> GenerateEcP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("EVP_EC_gen(P-256)");
  return key;
}

absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  ZM_ASSIGN_OR_RETURN(BioPtr bio, NewMemBio());
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  return BioContents(bio.get());
}

absl::StatusOr<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem, std::string_view source) {
  BioPtr bio = MemBuf(pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError(
        StrCat(source, ": not a PEM private key (or an encrypted one)"));
  }
  return key;
}

absl::StatusOr<std::string> PublicKeyToPem(EVP_PKEY* key) {
  ZM_ASSIGN_OR_RETURN(BioPtr bio, NewMemBio());
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) return OpenSslError("PEM_write_bio_PUBKEY");
  return BioContents(bio.get());
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  ZM_ASSIGN_OR_RETURN(BioPtr bio, NewMemBio());
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("PEM_write_bio_X509");
  return BioContents(bio.get());
}

absl::StatusOr<X509Ptr> CertFromPem(std::string_view pem, std::string_view source) {
  BioPtr bio = MemBuf(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError(StrCat(source, ": not a PEM certificate"));
  }
  return cert;
}

absl::StatusOr<std::string> CertsToPem(const std::vector<X509Ptr>& certs) {
  std::string out;
  for (const X509Ptr& c : certs) {
    ZM_ASSIGN_OR_RETURN(std::string pem, CertToPem(c.get()));
    out += pem;
  }
  return out;
}

absl::StatusOr<std::vector<X509Ptr>> CertsFromPem(std::string_view pem, std::string_view source) {
  BioPtr bio = MemBuf(pem);
  std::vector<X509Ptr> certs;
  ClearOpenSslErrors();
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) {
      bool end = AtEndOfPem();
      ClearOpenSslErrors();
      if (end && !certs.empty()) break;
      if (certs.empty())
        return absl::InvalidArgumentError(StrCat(source, ": not a PEM certificate"));
      return absl::InvalidArgumentError(
          StrCat(source, ": certificate ", certs.size() + 1, " is not a valid PEM certificate"));
    }
    certs.push_back(std::move(cert));
  }
  return certs;
}

absl::StatusOr<std::string> CsrToPem(X509_REQ* csr) {
  ZM_ASSIGN_OR_RETURN(BioPtr bio, NewMemBio());
  if (PEM_write_bio_X509_REQ(bio.get(), csr) != 1) return OpenSslError("PEM_write_bio_X509_REQ");
  return BioContents(bio.get());
}

absl::StatusOr<X509ReqPtr> CsrFromPem(std::string_view pem, std::string_view source) {
  BioPtr bio = MemBuf(pem);
  X509ReqPtr csr(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (csr == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError(StrCat(source, ": not a PEM certificate request"));
  }
  return csr;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, bool require_private) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("fstat", path);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(StrCat(path, ": not a regular file"));
  if (require_private && (st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(
        StrCat(path, ": private key file has mode ", Octal(st.st_mode),
               ", must not be accessible by group or others (chmod 600)"));
  }
  if (static_cast<size_t>(st.st_size) > kMaxFileSize) {
    return absl::InvalidArgumentError(StrCat(path, ": larger than ", kMaxFileSize, " bytes"));
  }
  std::string data;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxFileSize) {
      return absl::InvalidArgumentError(StrCat(path, ": larger than ", kMaxFileSize, " bytes"));
    }
  }
  return data;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp.XXXXXX";
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));  // created 0600
  if (!fd) return ErrnoError("mkostemp", tmp);
  auto fail = [&](absl::Status st) {
    ::unlink(tmp.c_str());
    return st;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail(ErrnoError("fchmod", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrnoError("write", tmp));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail(ErrnoError("fsync", tmp));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(ErrnoError("rename", path));
  return absl::OkStatus();
}

absl::StatusOr<X509Ptr> LoadCertFile(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  return CertFromPem(pem, path);
}

absl::StatusOr<std::vector<X509Ptr>> LoadCertsFile(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  return CertsFromPem(pem, path);
}

absl::StatusOr<EvpPkeyPtr> LoadPrivateKeyFile(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, /*require_private=*/true));
  return PrivateKeyFromPem(pem, path);
}

}  // namespace zm::tls

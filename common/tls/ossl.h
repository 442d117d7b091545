#pragma once
// OpenSSL handles as unique_ptrs (CONVENTIONS 2): the only place *_free appears. And the
// error queue as readable text.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace zm::tls {

template <auto kFree>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using OsslParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using OsslParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<ECDSA_SIG_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OsslDeleter<X509_REQ_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OsslDeleter<X509_NAME_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OsslDeleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OsslDeleter<GENERAL_NAMES_free>>;
using Asn1Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, OsslDeleter<ASN1_IA5STRING_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OsslDeleter<ASN1_INTEGER_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OsslDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OsslDeleter<SSL_free>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, OsslDeleter<SSL_SESSION_free>>;

// STACK_OF(X509_EXTENSION) with its elements (X509_REQ_get_extensions returns one).
struct X509ExtensionStackFree {
  void operator()(STACK_OF(X509_EXTENSION) * s) const {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
  }
};
using X509ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), X509ExtensionStackFree>;

// Buffers OpenSSL allocated for us (i2d_* output, ...).
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using OpenSslBytesPtr = std::unique_ptr<unsigned char, OpenSslFree>;

// New owning references to shared objects.
inline X509Ptr UpRef(X509* x) {
  if (x != nullptr) X509_up_ref(x);
  return X509Ptr(x);
}
inline EvpPkeyPtr UpRef(EVP_PKEY* k) {
  if (k != nullptr) EVP_PKEY_up_ref(k);
  return EvpPkeyPtr(k);
}

// Drains this thread's OpenSSL error queue into one line ("error:0A000086:SSL
// routines::certificate verify failed; ..."); "no OpenSSL error" when it is empty.
std::string OpenSslErrors();

// Drops this thread's OpenSSL error queue.
void ClearOpenSslErrors();

// Internal("<what>: <OpenSslErrors()>"), draining the queue.
absl::Status OpenSslError(std::string_view what);

// The readable contents of a memory BIO.
std::string BioContents(BIO* bio);

}  // namespace zm::tls

#pragma once
// The CA root on disk, loaded or created the same way by every process that runs a CA (the
// agent in local mode, zmesh-ca in cluster mode): `<state-dir>/ca/root-cert.pem` and
// `<state-dir>/ca/root-key.pem` by default, the root created on first start and kept there,
// the key written with mode 0600 (and refused later if group or others may read it).

#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/tls/ca.h"

namespace zm::ca {

struct RootFiles {
  std::string cert;
  std::string key;
};

// {<state_dir>/ca/root-cert.pem, <state_dir>/ca/root-key.pem}.
RootFiles RootFilesIn(const std::string& state_dir);

// Creates the files' parent directories when missing (a directory created here gets mode
// 0700; a failure is an error naming the directory), then
// tls::CertificateAuthority::LoadOrCreate.
absl::StatusOr<tls::CertificateAuthority> LoadOrCreateRoot(const RootFiles& files,
                                                           std::string trust_domain,
                                                           const Clock& clock);

}  // namespace zm::ca

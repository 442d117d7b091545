#include "common/ca/root.h"

#include <filesystem>

namespace zm::ca {

RootFiles RootFilesIn(const std::string& state_dir) {
  return {.cert = state_dir + "/ca/root-cert.pem", .key = state_dir + "/ca/root-key.pem"};
}

absl::StatusOr<tls::CertificateAuthority> LoadOrCreateRoot(const RootFiles& files,
                                                           std::string trust_domain,
                                                           const Clock& clock) {
  for (const std::string& f : {files.cert, files.key}) {
    std::error_code ec;
    auto dir = std::filesystem::path(f).parent_path();
    if (!dir.empty() && std::filesystem::create_directories(dir, ec)) {
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
  }
  return tls::CertificateAuthority::LoadOrCreate(files.cert, files.key, std::move(trust_domain),
                                                 clock);
}

}  // namespace zm::ca

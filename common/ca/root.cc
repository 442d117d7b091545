#include "common/ca/root.h"

#include <filesystem>
#include <system_error>

#include "common/base/status.h"

namespace zm::ca {

RootFiles RootFilesIn(const std::string& state_dir) {
  return {.cert = state_dir + "/ca/root-cert.pem", .key = state_dir + "/ca/root-key.pem"};
}

absl::StatusOr<tls::CertificateAuthority> LoadOrCreateRoot(const RootFiles& files,
                                                           std::string trust_domain,
                                                           const Clock& clock) {
  for (const std::string& f : {files.cert, files.key}) {
    auto dir = std::filesystem::path(f).parent_path();
    if (dir.empty()) continue;
    std::error_code ec;
    bool created = std::filesystem::create_directories(dir, ec);
    if (!ec && created) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    if (ec) return ErrnoError(created ? "chmod" : "mkdir", dir.string(), ec.value());
  }
  return tls::CertificateAuthority::LoadOrCreate(files.cert, files.key, std::move(trust_domain),
                                                 clock);
}

}  // namespace zm::ca

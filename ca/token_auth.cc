#include "ca/token_auth.h"

#include <openssl/evp.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/ca.h"
#include "common/tls/pem.h"

namespace zm::ca {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("ca");
  return l;
}

std::string_view Trim(std::string_view s) {
  absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size()));
  return std::string_view(t.data(), t.size());
}

bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f && c != ','; }

}  // namespace

std::string TokenDigest(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // SHA-256 of a short buffer cannot fail short of memory exhaustion.
  if (EVP_Digest(token.data(), token.size(), md, &len, EVP_sha256(), nullptr) != 1) std::abort();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<std::string> BearerToken(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto [begin, end] = metadata.equal_range("authorization");
  if (begin == end) {
    return absl::UnauthenticatedError(
        "no bearer token: send metadata `authorization: Bearer <token>`");
  }
  if (std::next(begin) != end) {
    return absl::UnauthenticatedError("more than one authorization metadata entry");
  }
  std::string_view value(begin->second.data(), begin->second.size());
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(value.data(), kScheme.size()),
                              absl::string_view(kScheme.data(), kScheme.size()))) {
    return absl::UnauthenticatedError("authorization metadata is not `Bearer <token>`");
  }
  std::string_view token = Trim(value.substr(kScheme.size()));
  if (token.empty()) return absl::UnauthenticatedError("empty bearer token");
  return std::string(token);
}

absl::StatusOr<std::map<std::string, TokenEntry>> ParseTokenFile(std::string_view content,
                                                                 std::string_view path) {
  std::map<std::string, TokenEntry> out;
  int line_no = 0;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    std::string_view raw =
        content.substr(pos, nl == std::string_view::npos ? content.npos : nl - pos);
    pos = nl == std::string_view::npos ? content.size() : nl + 1;
    ++line_no;
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(StrCat("token file ", path, ", line ", line_no, ": ", why));
    };
    size_t fields = 1;
    for (char c : line) fields += c == ',' ? 1 : 0;
    if (fields != 2) return bad(StrCat("expected TOKEN,NODE, found ", fields, " field(s)"));
    size_t comma = line.find(',');
    std::string_view token = Trim(line.substr(0, comma));
    std::string_view node = Trim(line.substr(comma + 1));
    if (token.empty()) return bad("empty token");
    for (char c : token) {
      if (!IsTokenChar(c)) return bad("the token has a blank or a non-printable character");
    }
    if (!tls::IsDnsName(node, /*allow_wildcard=*/false)) {
      return bad(StrCat("\"", node, "\" is not a node name (a lower-case DNS subdomain)"));
    }
    auto [it, inserted] =
        out.emplace(TokenDigest(token), TokenEntry{.node = std::string(node), .line = line_no});
    if (!inserted) return bad(StrCat("the same token is already given on line ", it->second.line));
  }
  return out;
}

bool StaticTokenFile::Stamp::operator==(const Stamp& o) const {
  return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
         ctime.tv_nsec == o.ctime.tv_nsec;
}

absl::StatusOr<std::unique_ptr<StaticTokenFile>> StaticTokenFile::Load(std::string path) {
  auto file = std::unique_ptr<StaticTokenFile>(new StaticTokenFile(std::move(path)));
  std::lock_guard lock(file->mu_);
  file->RefreshLocked();
  if (!file->load_status_.ok()) return file->load_status_;
  return file;
}

void StaticTokenFile::RefreshLocked() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    absl::Status err = ErrnoError("stat", StrCat("token file ", path_));
    if (load_status_.ok() || !loaded_) L().error("{}; refusing every caller", err.message());
    load_status_ = absl::UnavailableError(err.message());
    loaded_ = true;
    stamp_ = {};
    tokens_.clear();
    return;
  }
  Stamp now{.dev = st.st_dev,
            .ino = st.st_ino,
            .size = st.st_size,
            .mtime = st.st_mtim,
            .ctime = st.st_ctim};
  if (loaded_ && now == stamp_) return;
  stamp_ = now;
  loaded_ = true;
  tokens_.clear();
  auto content = tls::ReadFile(path_);
  if (!content.ok()) {
    load_status_ = absl::UnavailableError(StrCat("token file ", content.status().message()));
    L().error("{}; refusing every caller", load_status_.message());
    return;
  }
  auto parsed = ParseTokenFile(*content, path_);
  if (!parsed.ok()) {
    load_status_ = absl::UnavailableError(parsed.status().message());
    L().error("{}; refusing every caller until it is fixed", parsed.status().message());
    return;
  }
  tokens_ = std::move(*parsed);
  load_status_ = absl::OkStatus();
  L().info("token file {}: {} token(s)", path_, tokens_.size());
}

absl::StatusOr<Caller> StaticTokenFile::Authenticate(std::string_view token) {
  std::lock_guard lock(mu_);
  RefreshLocked();
  if (!load_status_.ok()) return load_status_;
  auto it = tokens_.find(TokenDigest(token));
  if (it == tokens_.end()) {
    return absl::UnauthenticatedError(StrCat("unknown token (not in token file ", path_, ")"));
  }
  return Caller{.node = it->second.node,
                .description = StrCat("ztunnel of node ", it->second.node, " (token of ", path_,
                                      " line ", it->second.line, ")")};
}

size_t StaticTokenFile::size() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

}  // namespace zm::ca

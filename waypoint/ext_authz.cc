#include "waypoint/ext_authz.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/http/asio_util.h"
#include "common/jwt/policy.h"

namespace zm::waypoint {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(StrCat(where, ": ", what));
}

absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& n, const std::string& where) {
  std::vector<std::string> out;
  if (!n) return out;
  if (!n.IsSequence()) return Bad(where, "not a list of strings");
  for (const YAML::Node& item : n) {
    if (!item.IsScalar()) return Bad(where, "not a list of strings");
    out.push_back(Lower(item.as<std::string>()));
  }
  return out;
}

absl::Status ReadProvider(const YAML::Node& body, ExtAuthzProvider& p, const std::string& where) {
  if (!body.IsMap()) return Bad(where, "not a map");
  const bool http = p.kind == ExtAuthzProvider::Kind::kHttp;
  for (const auto& kv : body) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string field = StrCat(where, ".", key);
    if (key == "service") {
      p.service = v.as<std::string>("");
    } else if (key == "port") {
      int port = v.IsScalar() ? std::atoi(v.as<std::string>().c_str()) : 0;
      if (port < 1 || port > 65535) return Bad(field, "not a port (1-65535)");
      p.port = static_cast<uint16_t>(port);
    } else if (key == "timeout") {
      auto ms = jwt::ParseDurationMs(v.as<std::string>(""));
      if (!ms || *ms == 0) return Bad(field, "not a duration such as 0.5s or 200ms");
      p.timeout = std::chrono::milliseconds(*ms);
    } else if (key == "failOpen") {
      std::string b = v.as<std::string>("");
      if (b != "true" && b != "false") return Bad(field, "not true or false");
      p.fail_open = b == "true";
    } else if (http && key == "pathPrefix") {
      p.path_prefix = v.as<std::string>("");
      if (!p.path_prefix.empty() && p.path_prefix.front() != '/') {
        return Bad(field, "must start with /");
      }
    } else if (http && key == "statusOnError") {
      int code = std::atoi(v.as<std::string>("").c_str());
      if (code < 100 || code > 599) return Bad(field, "not an HTTP status");
      p.status_on_error = code;
    } else if (http && key == "includeRequestHeadersInCheck") {
      ZM_ASSIGN_OR_RETURN(p.include_request_headers, StringList(v, field));
    } else if (http && key == "headersToUpstreamOnAllow") {
      ZM_ASSIGN_OR_RETURN(p.headers_to_upstream_on_allow, StringList(v, field));
    } else if (http && key == "headersToDownstreamOnDeny") {
      ZM_ASSIGN_OR_RETURN(p.headers_to_downstream_on_deny, StringList(v, field));
    } else {
      return Bad(field, "unknown field");
    }
  }
  if (p.service.empty()) return Bad(StrCat(where, ".service"), "missing");
  if (p.port == 0) return Bad(StrCat(where, ".port"), "missing");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ExtAuthzProvider>> ParseMeshConfigProviders(std::string_view yaml,
                                                                       const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Bad(source, StrCat("not YAML: ", e.what()));
  }
  std::vector<ExtAuthzProvider> out;
  if (!root || root.IsNull()) return out;
  if (!root.IsMap()) return Bad(source, "not a MeshConfig map");
  const YAML::Node list = root["extensionProviders"];
  if (!list) return out;
  if (!list.IsSequence()) return Bad(StrCat(source, ": extensionProviders"), "not a list");
  try {
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& item = list[i];
      const std::string where = StrCat(source, ": extensionProviders[", i, "]");
      if (!item.IsMap() || !item["name"]) return Bad(where, "needs a name");
      ExtAuthzProvider p;
      p.name = item["name"].as<std::string>();
      const std::string named = StrCat(source, ": extensionProviders[", i, "] (", p.name, ")");
      if (std::any_of(out.begin(), out.end(), [&](const auto& o) { return o.name == p.name; })) {
        return Bad(named, "a provider of that name is already defined");
      }
      bool kind_seen = false;
      for (const auto& kv : item) {
        const std::string key = kv.first.as<std::string>();
        if (key == "name") continue;
        if (key == "envoyExtAuthzHttp" || key == "envoyExtAuthzGrpc") {
          if (kind_seen) return Bad(named, "more than one provider kind");
          kind_seen = true;
          p.kind = key == "envoyExtAuthzHttp" ? ExtAuthzProvider::Kind::kHttp
                                              : ExtAuthzProvider::Kind::kGrpc;
          ZM_RETURN_IF_ERROR(ReadProvider(kv.second, p, StrCat(named, ".", key)));
        }
        // Other provider kinds (tracing, access logging, ...) are not authorizers: skipped.
      }
      if (kind_seen) out.push_back(std::move(p));
    }
  } catch (const YAML::Exception& e) {
    return Bad(source, StrCat("extensionProviders: ", e.what()));
  }
  return out;
}

absl::StatusOr<Endpoint> ResolveProvider(const ExtAuthzProvider& provider,
                                         const mesh::Snapshot& snapshot) {
  if (auto ip = IpAddr::Parse(provider.service); ip.ok()) {
    return Endpoint{.ip = *ip, .port = provider.port};
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t dot = provider.service.find('.', start);
    parts.push_back(provider.service.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (parts.size() < 2) {
    return absl::NotFoundError(StrCat("provider ", provider.name, ": service \"", provider.service,
                                      "\" is neither an IP address nor name.namespace[.svc...]"));
  }
  const mesh::Service* svc = snapshot.FindService(parts[1], parts[0]);
  if (svc == nullptr) {
    return absl::NotFoundError(StrCat("provider ", provider.name, ": no Service ", parts[1], "/",
                                      parts[0], " in the mesh"));
  }
  const mesh::ServicePort* port = svc->FindPort(provider.port);
  if (port == nullptr) {
    return absl::NotFoundError(
        StrCat("provider ", provider.name, ": Service ", svc->key(), " has no port ", provider.port));
  }
  const size_t index = static_cast<size_t>(port - svc->ports.data());
  for (const mesh::ServiceEndpoint& ep : svc->endpoints) {
    if (index >= ep.target_ports.size() || ep.target_ports[index] == 0 || ep.ips.empty()) continue;
    const size_t slash = ep.workload.find('/');
    const mesh::Workload* w =
        snapshot.FindWorkload(ep.workload.substr(0, slash), ep.workload.substr(slash + 1));
    if (w == nullptr || w->terminal()) continue;
    return Endpoint{.ip = ep.ips.front(), .port = ep.target_ports[index]};
  }
  return absl::UnavailableError(StrCat("provider ", provider.name, ": Service ", svc->key(),
                                       " has no running endpoint"));
}

namespace {

class HttpCheck : public std::enable_shared_from_this<HttpCheck> {
 public:
  HttpCheck(asio::any_io_executor ex, ExtAuthzProvider provider,
            std::function<void(ExtAuthzResult)> done)
      : socket_(ex), timer_(ex), provider_(std::move(provider)), done_(std::move(done)) {}

  void Start(const Endpoint& address, const RequestHead& head) {
    std::string path = provider_.path_prefix + head.path;
    request_ = StrCat(head.method, " ", path, " HTTP/1.1\r\nhost: ", head.authority,
                      "\r\ncontent-length: 0\r\nconnection: close\r\n");
    for (const HttpHeader& h : head.headers) {
      const std::string name = Lower(h.name);
      if (std::find(provider_.include_request_headers.begin(),
                    provider_.include_request_headers.end(),
                    name) != provider_.include_request_headers.end()) {
        request_ += StrCat(name, ": ", h.value, "\r\n");
      }
    }
    request_ += "\r\n";
    timer_.expires_after(provider_.timeout);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->Fail(StrCat("no answer within ", self->provider_.timeout.count(), " ms"));
    });
    socket_.async_connect(
        ToAsio(address),
        [self = shared_from_this(), address](const asio::error_code& ec) {
          if (ec) return self->Fail(StrCat("connect to ", address.ToString(), ": ", ec.message()));
          asio::async_write(self->socket_, asio::buffer(self->request_),
                            [self](const asio::error_code& wec, size_t) {
                              if (wec) return self->Fail(StrCat("write: ", wec.message()));
                              self->Read();
                            });
        });
  }

 private:
  void Read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](
                                                    const asio::error_code& ec, size_t n) {
      self->response_.append(self->buf_.data(), n);
      if (self->response_.size() > (1u << 20)) return self->Fail("answer over 1 MiB");
      if (ec == asio::error::eof) return self->Finish();
      if (ec) return self->Fail(StrCat("read: ", ec.message()));
      self->Read();
    });
  }

  void Finish() {
    if (finished_) return;
    const size_t head_end = response_.find("\r\n\r\n");
    if (head_end == std::string::npos || !response_.starts_with("HTTP/1.") ||
        response_.size() < 12) {
      return Fail("not an HTTP/1.x response");
    }
    const int status = std::atoi(response_.c_str() + 9);
    std::vector<HttpHeader> headers;
    size_t pos = response_.find("\r\n") + 2;
    while (pos < head_end) {
      size_t eol = response_.find("\r\n", pos);
      std::string line = response_.substr(pos, eol - pos);
      pos = eol + 2;
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      headers.push_back({Lower(line.substr(0, colon)), value});
    }
    std::string body = response_.substr(head_end + 4);
    for (const HttpHeader& h : headers) {
      if (h.name == "content-length") {
        size_t len = std::strtoul(h.value.c_str(), nullptr, 10);
        if (len < body.size()) body.resize(len);
      }
    }
    ExtAuthzResult r;
    r.allowed = status == 200;
    r.status = status;
    r.detail = StrCat("provider ", provider_.name, " answered ", status);
    const auto& wanted =
        r.allowed ? provider_.headers_to_upstream_on_allow : provider_.headers_to_downstream_on_deny;
    for (const HttpHeader& h : headers) {
      if (std::find(wanted.begin(), wanted.end(), h.name) == wanted.end()) continue;
      (r.allowed ? r.upstream_headers : r.downstream_headers).push_back(h);
    }
    if (!r.allowed) r.body = std::move(body);
    Complete(std::move(r));
  }

  void Fail(const std::string& why) {
    if (finished_) return;
    ExtAuthzResult r;
    r.allowed = provider_.fail_open;
    r.status = provider_.status_on_error;
    r.detail = StrCat("provider ", provider_.name, ": ", why,
                      provider_.fail_open ? " (failOpen: allowed)" : "");
    Complete(std::move(r));
  }

  void Complete(ExtAuthzResult r) {
    finished_ = true;
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    auto done = std::move(done_);
    done(std::move(r));
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  ExtAuthzProvider provider_;
  std::function<void(ExtAuthzResult)> done_;
  std::string request_;
  std::string response_;
  std::array<char, 8192> buf_{};
  bool finished_ = false;
};

}  // namespace

void CheckHttp(asio::any_io_executor executor, const ExtAuthzProvider& provider,
               const Endpoint& address, const RequestHead& head,
               std::function<void(ExtAuthzResult)> done) {
  std::make_shared<HttpCheck>(executor, provider, std::move(done))->Start(address, head);
}

}  // namespace zm::waypoint

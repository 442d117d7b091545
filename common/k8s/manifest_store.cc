#include "common/k8s/manifest_store.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::k8s {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool IsManifestFileName(std::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  return EndsWith(name, ".yaml") || EndsWith(name, ".yml") || EndsWith(name, ".json");
}

const Namespace* ManifestSnapshot::FindNamespace(std::string_view name) const {
  auto it = std::lower_bound(namespaces.begin(), namespaces.end(), name,
                             [](const Namespace& n, std::string_view v) { return n.name < v; });
  return it != namespaces.end() && it->name == name ? &*it : nullptr;
}

const Pod* ManifestSnapshot::FindPod(std::string_view namespace_name, std::string_view name) const {
  auto key = std::make_tuple(namespace_name, name);
  auto it = std::lower_bound(pods.begin(), pods.end(), key, [](const Pod& p, const auto& k) {
    return std::make_tuple(std::string_view(p.namespace_name), std::string_view(p.name)) < k;
  });
  return it != pods.end() && it->namespace_name == namespace_name && it->name == name ? &*it
                                                                                      : nullptr;
}

namespace {

// Binary search in a vector sorted by (namespace_name, name).
template <typename T>
const T* FindByKey(const std::vector<T>& v, std::string_view namespace_name,
                   std::string_view name) {
  auto key = std::make_tuple(namespace_name, name);
  auto it = std::lower_bound(v.begin(), v.end(), key, [](const T& o, const auto& k) {
    return std::make_tuple(std::string_view(o.namespace_name), std::string_view(o.name)) < k;
  });
  return it != v.end() && it->namespace_name == namespace_name && it->name == name ? &*it : nullptr;
}

// (document, list item) of a source "pods.yaml:doc3" or "pods.yaml:doc3/items[2]".
std::pair<int, int> SourceOrder(std::string_view source) {
  std::pair<int, int> order{0, -1};
  size_t doc = source.rfind(":doc");
  if (doc == std::string_view::npos) return order;
  std::string_view rest = source.substr(doc + 4);
  const char* end = std::from_chars(rest.data(), rest.data() + rest.size(), order.first).ptr;
  rest.remove_prefix(static_cast<size_t>(end - rest.data()));
  if (rest.starts_with("/items[")) {
    rest.remove_prefix(7);
    std::from_chars(rest.data(), rest.data() + rest.size(), order.second);
  }
  return order;
}

}  // namespace

const Service* ManifestSnapshot::FindService(std::string_view namespace_name,
                                             std::string_view name) const {
  return FindByKey(services, namespace_name, name);
}

const PeerAuthentication* ManifestSnapshot::FindPeerAuthentication(std::string_view namespace_name,
                                                                   std::string_view name) const {
  return FindByKey(peer_authentications, namespace_name, name);
}

ManifestStore::ManifestStore(std::string dir) : dir_(std::move(dir)) {}

absl::StatusOr<ManifestSnapshot> ManifestStore::Load(const std::vector<std::string>& paths) {
  ManifestStore store("");
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat", path);
    if (!S_ISDIR(st.st_mode)) {
      files.push_back(path);
      continue;
    }
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return ErrnoError("opendir", path);
    std::set<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (IsManifestFileName(e->d_name)) names.insert(e->d_name);
    }
    ::closedir(d);
    for (const std::string& name : names) files.push_back(StrCat(path, "/", name));
  }
  for (size_t i = 0; i < files.size(); ++i) {
    ZM_ASSIGN_OR_RETURN(ParsedFile parsed, ParseManifestFile(files[i]));
    // Keys keep the order given (Snapshot walks files_ in key order).
    store.files_[fmt::format("{:08}", i)] = FileState{.last_good = std::move(parsed)};
  }
  return store.Snapshot();
}

absl::Status ManifestStore::Reload() {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoError("opendir", dir_);
  std::set<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    if (IsManifestFileName(e->d_name)) names.insert(e->d_name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoError("readdir", dir_, err);

  std::map<std::string, FileState> next;
  for (const std::string& name : names) {
    const std::string path = StrCat(dir_, "/", name);
    FileState state;
    if (auto it = files_.find(name); it != files_.end()) state = std::move(it->second);
    // stat follows symlinks (ConfigMap mounts are symlinks into ..data/).
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      // Gone between readdir and now (a rename in flight): it is reported next time.
      if (errno == ENOENT) continue;
      state.error = std::string(ErrnoError("stat", path).message());
      next[name] = std::move(state);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    auto content = ReadManifestBytes(path);
    if (!content.ok()) {
      if (absl::IsNotFound(content.status())) continue;
      state.error = std::string(content.status().message());
      next[name] = std::move(state);
      continue;
    }
    if (*content == state.content && state.error.empty() && files_.count(name) != 0) {
      next[name] = std::move(state);
      continue;
    }
    auto parsed = ParseManifest(*content, name);
    state.content = std::move(*content);
    if (parsed.ok()) {
      state.last_good = std::move(*parsed);
      state.error.clear();
    } else {
      state.error = std::string(parsed.status().message());
      if (state.last_good.HasObjects()) {
        state.error += " (keeping its last good content)";
      }
    }
    next[name] = std::move(state);
  }
  for (const auto& [name, state] : files_) {
    if (next.count(name) == 0) Log("k8s").info("{}/{}: removed, dropping its objects", dir_, name);
  }
  files_ = std::move(next);
  return absl::OkStatus();
}

namespace {

// Valid and rejected policies of one kind share one name space (the source says which it is):
// the first in sorted file order, and in document order within a file, is kept, whichever it is.
// Outputs are sorted by namespace/name.
template <typename Files, typename GetValid, typename GetRejected, typename NsOf, typename Valid,
          typename Rejected>
void MergePolicies(const Files& files, std::string_view kind, GetValid get_valid,
                   GetRejected get_rejected, NsOf ns_of, std::vector<Valid>& valid_out,
                   std::vector<Rejected>& rejected_out, std::vector<std::string>& errors) {
  std::map<std::pair<std::string, std::string>, std::string> sources;
  auto keep = [&](const auto& p) {
    // A rejected one may have no (valid) name: it cannot clash with anything, keep it.
    if (p.name.empty()) return true;
    auto [it, inserted] = sources.emplace(std::make_pair(ns_of(p), p.name), p.source);
    if (!inserted) {
      errors.push_back(StrCat(p.source, ": ", kind, " ", p.key(),
                              ": duplicate, already defined at ", it->second,
                              " (keeping that one)"));
    }
    return inserted;
  };
  for (const auto& [name, state] : files) {
    struct Entry {
      std::pair<int, int> order;
      const Valid* valid;
      const Rejected* rejected;
    };
    std::vector<Entry> in_file;
    for (const Valid& p : *get_valid(state.last_good)) {
      in_file.push_back({SourceOrder(p.source), &p, nullptr});
    }
    for (const Rejected& r : *get_rejected(state.last_good)) {
      in_file.push_back({SourceOrder(r.source), nullptr, &r});
    }
    std::stable_sort(in_file.begin(), in_file.end(),
                     [](const Entry& a, const Entry& b) { return a.order < b.order; });
    for (const Entry& e : in_file) {
      if (e.valid != nullptr && keep(*e.valid)) valid_out.push_back(*e.valid);
      if (e.rejected != nullptr && keep(*e.rejected)) rejected_out.push_back(*e.rejected);
    }
  }
  auto by_key = [&](const auto& a, const auto& b) {
    return std::make_pair(ns_of(a), a.name) < std::make_pair(ns_of(b), b.name);
  };
  std::sort(valid_out.begin(), valid_out.end(), by_key);
  std::stable_sort(rejected_out.begin(), rejected_out.end(), by_key);
}

}  // namespace

ManifestSnapshot ManifestStore::Snapshot() const {
  ManifestSnapshot snap;
  std::map<std::string, const Namespace*> namespaces;
  std::map<std::pair<std::string, std::string>, const Pod*> pods;
  std::map<std::string, const Pod*> uids;
  for (const auto& [name, state] : files_) {
    if (!state.error.empty()) snap.errors.push_back(state.error);
    for (const std::string& e : state.last_good.errors) snap.errors.push_back(e);
    for (const Namespace& ns : state.last_good.namespaces) {
      auto [it, inserted] = namespaces.emplace(ns.name, &ns);
      if (!inserted) {
        snap.errors.push_back(StrCat(ns.source, ": Namespace ", ns.name,
                                     ": duplicate, already defined at ", it->second->source,
                                     " (keeping that one)"));
      }
    }
    for (const Pod& pod : state.last_good.pods) {
      auto [it, inserted] = pods.emplace(std::make_pair(pod.namespace_name, pod.name), &pod);
      if (!inserted) {
        snap.errors.push_back(StrCat(pod.source, ": Pod ", pod.key(),
                                     ": duplicate, already defined at ", it->second->source,
                                     " (keeping that one)"));
        continue;
      }
      auto [uit, uid_new] = uids.emplace(pod.uid, &pod);
      if (!uid_new) {
        snap.errors.push_back(StrCat(pod.source, ": Pod ", pod.key(), ": metadata.uid: \"", pod.uid,
                                     "\" already used by Pod ", uit->second->key(), " at ",
                                     uit->second->source, " (keeping that one)"));
        pods.erase(it);
      }
    }
  }
  std::map<std::pair<std::string, std::string>, const Service*> services;
  for (const auto& [name, state] : files_) {
    for (const Service& svc : state.last_good.services) {
      auto [it, inserted] = services.emplace(std::make_pair(svc.namespace_name, svc.name), &svc);
      if (!inserted) {
        snap.errors.push_back(StrCat(svc.source, ": Service ", svc.key(),
                                     ": duplicate, already defined at ", it->second->source,
                                     " (keeping that one)"));
      }
    }
  }
  MergePolicies(
      files_, "PeerAuthentication", [](const ParsedFile& f) { return &f.peer_authentications; },
      [](const ParsedFile& f) { return &f.rejected_peer_authentications; },
      [](const auto& p) { return p.namespace_name; }, snap.peer_authentications,
      snap.rejected_peer_authentications, snap.errors);
  MergePolicies(
      files_, "AuthorizationPolicy", [](const ParsedFile& f) { return &f.authorization_policies; },
      [](const ParsedFile& f) { return &f.rejected_authorization_policies; },
      [](const auto& p) { return p.ns; }, snap.authorization_policies,
      snap.rejected_authorization_policies, snap.errors);
  MergePolicies(
      files_, "RequestAuthentication",
      [](const ParsedFile& f) { return &f.request_authentications; },
      [](const ParsedFile& f) { return &f.rejected_request_authentications; },
      [](const auto& p) { return p.ns; }, snap.request_authentications,
      snap.rejected_request_authentications, snap.errors);
  for (const auto& [name, ns] : namespaces) snap.namespaces.push_back(*ns);
  for (const auto& [key, pod] : pods) snap.pods.push_back(*pod);
  for (const auto& [key, svc] : services) snap.services.push_back(*svc);
  return snap;
}

}  // namespace zm::k8s

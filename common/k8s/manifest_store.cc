#include "common/k8s/manifest_store.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
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

ManifestStore::ManifestStore(std::string dir) : dir_(std::move(dir)) {}

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
      if (!state.last_good.namespaces.empty() || !state.last_good.pods.empty()) {
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
        snap.errors.push_back(StrCat(ns.source, ": Namespace ", ns.name, ": duplicate, already "
                                     "defined at ", it->second->source, " (keeping that one)"));
      }
    }
    for (const Pod& pod : state.last_good.pods) {
      auto [it, inserted] = pods.emplace(std::make_pair(pod.namespace_name, pod.name), &pod);
      if (!inserted) {
        snap.errors.push_back(StrCat(pod.source, ": Pod ", pod.key(), ": duplicate, already "
                                     "defined at ", it->second->source, " (keeping that one)"));
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
  for (const auto& [name, ns] : namespaces) snap.namespaces.push_back(*ns);
  for (const auto& [key, pod] : pods) snap.pods.push_back(*pod);
  return snap;
}

}  // namespace zm::k8s

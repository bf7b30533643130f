#include "agent/model/snapshot.h"

#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/model/api_json_loader.h"
#include "agent/model/config_dir_source.h"
#include "agent/model/defaults.h"
#include "agent/model/json.h"
#include "agent/model/json_codec.h"
#include "agent/model/k8s_manifest.h"

namespace nodemesh::model {
namespace {

namespace fs = std::filesystem;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool IsYaml(const std::string& file) {
  std::string ext = fs::path(file).extension().string();
  return ext == ".yaml" || ext == ".yml";
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

std::vector<std::pair<std::string, std::string>> Tags(
    const rapidjson::Value& doc) {
  std::vector<std::pair<std::string, std::string>> tags;
  auto it = doc.FindMember("tags");
  if (it == doc.MemberEnd() || !it->value.IsArray()) return tags;
  for (const auto& t : it->value.GetArray()) {
    if (!t.IsObject() || !t.HasMember("key") || !t["key"].IsString()) continue;
    std::string value = t.HasMember("value") && t["value"].IsString()
                            ? t["value"].GetString()
                            : "";
    tags.emplace_back(t["key"].GetString(), std::move(value));
  }
  return tags;
}

// The name a spec-only file gets: its file name without extension.
std::string StemOf(const std::string& file) {
  return fs::path(file).stem().string();
}

}  // namespace

uint64_t Fnv1a(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string Snapshot::HashText() const {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, hash);
  return buf;
}

SnapshotBuilder::SnapshotBuilder(std::string config_dir,
                                 std::optional<ResourceKind> spec_only_kind)
    : config_dir_(std::move(config_dir)), spec_only_kind_(spec_only_kind) {}

std::shared_ptr<const Resource> SnapshotBuilder::Decode(
    const ApiShapeResource& r, Diagnostics* diags, Stats* stats) {
  std::string text = Serialize(r.doc);
  uint64_t h = Fnv1a(text, Fnv1a(r.where.ToString()));
  if (auto it = decoded_.find(h); it != decoded_.end()) {
    ++stats->resources_reused;
    return it->second;
  }
  auto out = std::make_shared<Resource>();
  out->id = r.id;
  out->where = r.where;
  out->spec_path = r.spec_path;
  out->content_hash = Fnv1a(text);
  out->tags = Tags(r.doc);
  static const rapidjson::Value kEmptyObject(rapidjson::kObjectType);
  auto spec = r.doc.FindMember("spec");
  Diagnostics local;
  out->spec = DecodeSpec(r.id.kind,
                         spec != r.doc.MemberEnd() ? spec->value : kEmptyObject,
                         r.where, r.id.ToString(), r.spec_path, &local);
  ApplyDefaults(&out->spec);
  ++stats->resources_decoded;
  bool ok = !local.has_errors();
  for (const auto& d : local.items()) diags->Add(d);
  if (ok) decoded_[h] = out;  // cache only clean decodes: errors re-report
  return out;
}

SnapshotBuilder::Result SnapshotBuilder::Build(const Snapshot* previous,
                                               const Overlay* overlay) {
  std::vector<std::string> files = ListModelFiles(config_dir_);
  if (external_ != nullptr) {
    // The config dir's own copy of the external root is not the model.
    files.erase(std::remove_if(files.begin(), files.end(),
                               [this](const std::string& f) {
                                 return f.rfind(external_root_, 0) == 0;
                               }),
                files.end());
    std::vector<std::string> merged;
    merged.reserve(files.size() + external_->size());
    auto ext = external_->begin();
    for (const std::string& f : files) {
      for (; ext != external_->end() && ext->first < f; ++ext)
        merged.push_back(ext->first);
      merged.push_back(f);
    }
    for (; ext != external_->end(); ++ext) merged.push_back(ext->first);
    files = std::move(merged);
  }
  if (overlay) {
    for (const auto& [path, content] : *overlay) {
      auto it = std::lower_bound(files.begin(), files.end(), path);
      bool present = it != files.end() && *it == path;
      if (content && !present) files.insert(it, path);
      if (!content && present) files.erase(it);
    }
  }
  return BuildFiles(files, previous, overlay);
}

SnapshotBuilder::Result SnapshotBuilder::BuildFiles(
    const std::vector<std::string>& files, const Snapshot* previous,
    const Overlay* overlay) {
  Result result;
  Diagnostics& diags = result.diagnostics;
  auto mark = std::chrono::steady_clock::now();
  auto lap = [&mark](int64_t* into) {
    auto now = std::chrono::steady_clock::now();
    *into = std::chrono::duration_cast<std::chrono::microseconds>(now - mark)
                .count();
    mark = now;
  };
  std::map<std::string, FileEntry> next;

  for (const auto& file : files) {
    const std::string path = config_dir_ + "/" + file;
    const std::string* overlaid = nullptr;
    if (overlay) {
      auto o = overlay->find(file);
      if (o != overlay->end() && o->second) overlaid = &*o->second;
    }
    const ExternalFile* ext = nullptr;
    if (external_ != nullptr && !overlaid) {
      auto e = external_->find(file);
      if (e != external_->end()) ext = &e->second;
    }
    struct stat st {};
    if (overlaid) {
      st.st_size = -1;  // never matches a file on disk: re-read it next time
    } else if (ext != nullptr) {
      // The store's revision stands in for the mtime; inode 0 for "not a
      // file".
      st.st_mtim.tv_sec = ext->revision / 1000000000;
      st.st_mtim.tv_nsec = ext->revision % 1000000000;
      st.st_size = static_cast<off_t>(ext->text.size());
    } else if (::stat(path.c_str(), &st) != 0) {
      diags.Error({file}, "", "", "cannot read the file");
      continue;
    }
    const int64_t mtime_ns =
        int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    auto old = files_.find(file);
    if (!overlaid && old != files_.end() && old->second.mtime_ns == mtime_ns &&
        old->second.size == st.st_size && old->second.inode == st.st_ino) {
      result.stats.resources_reused += old->second.resources.size();
      next[file] = std::move(old->second);
      continue;
    }
    std::string text;
    if (overlaid) {
      text = *overlaid;
    } else if (ext != nullptr) {
      text = ext->text;
    } else if (!ReadFile(path, &text)) {
      diags.Error({file}, "", "", "cannot read the file");
      continue;
    }
    uint64_t h = Fnv1a(text);
    if (old != files_.end() && old->second.content_hash == h) {
      old->second.mtime_ns = mtime_ns;
      old->second.size = st.st_size;
      old->second.inode = st.st_ino;
      result.stats.resources_reused += old->second.resources.size();
      next[file] = std::move(old->second);
      continue;
    }
    ++result.stats.files_read;
    FileEntry entry;
    entry.content_hash = h;
    entry.mtime_ns = mtime_ns;
    entry.size = st.st_size;
    entry.inode = st.st_ino;
    entry.kubernetes = LooksLikeKubernetes(text);
    if (entry.kubernetes) {
      entry.text = std::move(text);
    } else {
      std::vector<ApiShapeResource> raw;
      Diagnostics local;
      ApiJsonFallback fallback;
      if (spec_only_kind_) {
        fallback.set = true;
        fallback.id = {*spec_only_kind_, "validate",
                       *spec_only_kind_ == ResourceKind::kRoute ||
                               *spec_only_kind_ == ResourceKind::kGatewayRoute
                           ? "parent"
                           : "",
                       StemOf(file)};
        if (*spec_only_kind_ == ResourceKind::kMesh)
          fallback.id.mesh = StemOf(file);
      }
      ParseApiShapeText(text, IsYaml(file), {file}, fallback, &raw, &local);
      for (const auto& r : raw)
        entry.resources.push_back(Decode(r, &local, &result.stats));
      entry.diagnostics = local.items();
    }
    next[file] = std::move(entry);
  }
  files_ = std::move(next);
  lap(&result.stats.files_us);

  // Assemble: non-K8s resources from each file, K8s resolved across files.
  ResourceMap resources;
  auto add = [&](std::shared_ptr<const Resource> r) {
    auto [it, fresh] = Insert(&resources, r);
    if (!fresh)
      diags.Error(r->where, r->id.ToString(), "",
                  "defined twice: also in " + it->second->where.ToString() +
                      "; remove one definition");
  };
  for (const auto& [file, entry] : files_) {
    for (const auto& d : entry.diagnostics) diags.Add(d);
    for (const auto& r : entry.resources) add(r);
  }
  K8sObjectSet k8s;
  bool any_k8s = false;
  for (const auto& [file, entry] : files_) {
    if (!entry.kubernetes) continue;
    any_k8s = true;
    k8s.AddFile(file, entry.text, &diags);
  }
  // Kubernetes objects are resolved across files on every build: that is
  // cheap, and their decoding is cached by content.
  if (any_k8s)
    for (const auto& r : k8s.Resolve(&diags))
      add(Decode(r, &diags, &result.stats));

  lap(&result.stats.assemble_us);
  if (!spec_only_kind_) {
    AddImplicitMeshes(&resources, &diags);
    ValidateReferences(resources, &diags);
  }
  lap(&result.stats.validate_us);
  if (diags.has_errors()) return result;

  auto snap = std::make_shared<Snapshot>();
  snap->version = previous ? previous->version + 1 : 1;
  snap->built_at = std::chrono::system_clock::now();
  snap->files = files_.size();
  // Order-independent (the map is unordered): a sum of per-resource hashes.
  uint64_t h = 0;
  for (const auto& [id, r] : resources) {
    uint64_t one =
        Fnv1a(id.name,
              Fnv1a(id.parent, Fnv1a(id.mesh, static_cast<uint64_t>(id.kind))));
    h += (one ^ r->content_hash) * 1099511628211ULL;
  }
  snap->hash = h;
  snap->resources = std::move(resources);
  for (const auto& d : diags.items())
    if (d.severity != Diagnostic::Severity::kError) snap->warnings.push_back(d);
  result.snapshot = std::move(snap);
  lap(&result.stats.publish_us);
  return result;
}

}  // namespace nodemesh::model

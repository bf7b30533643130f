#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/model/mesh_state.h"
#include "agent/model/resource.h"

namespace nodemesh::model {

// One valid state of the whole mesh model: immutable, versioned,
// content-hashed. Published to readers as shared_ptr<const Snapshot>;
// resources that did not change are shared with the previous snapshot.
struct Snapshot {
  uint64_t version = 0;  // 1, 2, ... per agent run
  uint64_t hash = 0;     // over every resource as written
  std::chrono::system_clock::time_point built_at;
  ResourceMap resources;
  std::vector<Diagnostic> warnings;  // and notes
  size_t files = 0;

  // The hash as 16 hex digits, for /config_dump and logs.
  std::string HashText() const;
};

// Builds snapshots from the files of a config dir, reusing what did not
// change: an unchanged file is neither read into a DOM nor decoded again, and
// a resource whose API-shape text is unchanged is not decoded again.
class SnapshotBuilder {
 public:
  struct Stats {
    size_t files_read = 0;         // files whose bytes changed (parsed)
    size_t resources_decoded = 0;  // decoded this time
    size_t resources_reused = 0;   // taken from the previous build
    // Where the time went, microseconds.
    int64_t files_us = 0, assemble_us = 0, validate_us = 0, publish_us = 0;
  };
  struct Result {
    std::shared_ptr<const Snapshot> snapshot;  // null when invalid
    Diagnostics diagnostics;                   // errors, warnings, notes
    Stats stats;
  };

  // `spec_only_kind`: for `nodemeshctl validate --kind`, files holding just
  // {"spec": ...} are read as that kind, named after the file; references
  // are then not checked (a lone spec cannot resolve them).
  explicit SnapshotBuilder(std::string config_dir,
                           std::optional<ResourceKind> spec_only_kind = {});

  // Files as they would be after a write, for checking a change before it
  // is made: path (relative to the config dir) -> new content, or nullopt
  // for a file that would be removed.
  using Overlay = std::map<std::string, std::optional<std::string>>;

  // Model files kept outside the config dir (etcd keys), by the path they
  // stand for: `revision` changes whenever the text does, so an unchanged
  // one is reused without being hashed or parsed again.
  struct ExternalFile {
    int64_t revision = 0;
    std::string text;
    std::string key;  // where the store keeps it
  };
  using ExternalFiles = std::map<std::string, ExternalFile>;
  // From now on, files under `root` (e.g. "api/") are `files`, not what the
  // config dir holds there. `files` must outlive the builder.
  void SetExternal(std::string root, const ExternalFiles* files) {
    external_root_ = std::move(root);
    external_ = files;
  }

  // Reads the dir as it is now (with `overlay` over it, if given).
  // `previous` (may be null) numbers the result.
  Result Build(const Snapshot* previous, const Overlay* overlay = nullptr);
  // Reads exactly these files (paths relative to the config dir).
  Result BuildFiles(const std::vector<std::string>& files,
                    const Snapshot* previous, const Overlay* overlay = nullptr);

 private:
  struct FileEntry {
    // stat() says whether to read the file at all; the content hash whether
    // what it holds changed (a touch or a rewrite with the same bytes).
    int64_t mtime_ns = 0;
    int64_t size = -1;
    uint64_t inode = 0;
    uint64_t content_hash = 0;
    bool kubernetes = false;
    std::string text;  // kept for Kubernetes files: resolved across files
    std::vector<std::shared_ptr<const Resource>> resources;  // non-K8s
    std::vector<Diagnostic> diagnostics;                     // non-K8s
  };

  std::shared_ptr<const Resource> Decode(const struct ApiShapeResource& r,
                                         Diagnostics* diags, Stats* stats);

  std::string config_dir_;
  std::optional<ResourceKind> spec_only_kind_;
  std::string external_root_;
  const ExternalFiles* external_ = nullptr;
  std::map<std::string, FileEntry> files_;
  // Decoded resources by the hash of their API-shape text (K8s resources are
  // re-resolved as a whole; their decoding need not be).
  std::unordered_map<uint64_t, std::shared_ptr<const Resource>> decoded_;
};

uint64_t Fnv1a(std::string_view bytes, uint64_t seed = 1469598103934665603ULL);

}  // namespace nodemesh::model

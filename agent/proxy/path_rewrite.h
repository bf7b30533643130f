#pragma once

// The path rewrite a GatewayRoute applies before forwarding
// (HttpGatewayRouteRewrite.prefix and .path). Compiled once per snapshot;
// Apply() only appends to a caller's buffer.
//
// App Mesh semantics, from the user guide ("Gateway routes") and the
// App Mesh controller's GatewayRoute validation:
// - a prefix match rewrites the matched prefix to "/" by default
//   (defaultPrefix ENABLED): with match prefix "/chapter",
//   "/chapter/page" -> "/page" and "/chapter1" -> "/1";
// - rewrite.prefix.value replaces the matched prefix instead; the value
//   starts and ends with '/';
// - defaultPrefix DISABLED forwards the path unchanged;
// - rewrite.path.exact replaces the whole path (path exact/regex matches);
// - a path match without rewrite.path keeps the path;
// - the query string is always kept.

#include <string>
#include <string_view>

namespace nodemesh::proxy {

class PathRewrite {
 public:
  // Forwards the path unchanged.
  PathRewrite() = default;
  // Replaces `matched_prefix` (the route's match prefix) with
  // `replacement` ("/" for App Mesh's default).
  static PathRewrite Prefix(std::string matched_prefix,
                            std::string replacement);
  // Replaces the whole path.
  static PathRewrite Exact(std::string path);

  // Whether Apply() can change anything.
  bool active() const { return kind_ != Kind::kNone; }

  // Appends the origin-form request target for a request whose path and
  // query (without '?') are given. `path` must be one the route matched.
  void Apply(std::string_view path, std::string_view query,
             std::string* out) const;

  // For /routes: "prefix /a -> /", "path -> /x", or "" when inactive.
  std::string Describe() const;

  friend bool operator==(const PathRewrite&, const PathRewrite&) = default;

 private:
  enum class Kind { kNone, kPrefix, kExact };

  Kind kind_ = Kind::kNone;
  std::string prefix_;  // kPrefix: the matched prefix
  std::string value_;   // kPrefix: its replacement; kExact: the path
};

}  // namespace nodemesh::proxy

#include "agent/proxy/path_rewrite.h"

#include <utility>

namespace nodemesh::proxy {

PathRewrite PathRewrite::Prefix(std::string matched_prefix,
                                std::string replacement) {
  PathRewrite r;
  // "/" -> "/" changes nothing: keep the request's own target.
  if (matched_prefix == replacement) return r;
  r.kind_ = Kind::kPrefix;
  r.prefix_ = std::move(matched_prefix);
  r.value_ = std::move(replacement);
  return r;
}

PathRewrite PathRewrite::Exact(std::string path) {
  PathRewrite r;
  r.kind_ = Kind::kExact;
  r.value_ = std::move(path);
  return r;
}

std::string PathRewrite::Describe() const {
  switch (kind_) {
    case Kind::kNone:
      return "";
    case Kind::kPrefix:
      return "prefix " + prefix_ + " -> " + value_;
    case Kind::kExact:
      return "path -> " + value_;
  }
  return "";
}

void PathRewrite::Apply(std::string_view path, std::string_view query,
                        std::string* out) const {
  switch (kind_) {
    case Kind::kNone:
      out->append(path);
      break;
    case Kind::kExact:
      out->append(value_);
      break;
    case Kind::kPrefix: {
      std::string_view rest =
          path.starts_with(prefix_) ? path.substr(prefix_.size()) : path;
      out->append(value_);
      // The user guide's "/chapter/page" -> "/page": a prefix without its
      // trailing slash still leaves one slash at the boundary, not two.
      if (!value_.empty() && value_.back() == '/' &&
          (prefix_.empty() || prefix_.back() != '/') && rest.starts_with('/'))
        rest.remove_prefix(1);
      out->append(rest);
      break;
    }
  }
  if (!query.empty()) out->append("?").append(query);
}

}  // namespace nodemesh::proxy

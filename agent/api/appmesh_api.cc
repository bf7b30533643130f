#include "agent/api/appmesh_api.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/api/api_json.h"
#include "glog/logging.h"

namespace nodemesh::api {
namespace {

using admin::AdminRequest;
using admin::AdminResponse;
using model::ResourceKind;

constexpr std::string_view kPrefix = "/v20190125/";
constexpr int kDefaultListLimit = 100;
constexpr int kMaxListLimit = 100;
constexpr int kMaxTagsLimit = 50;

enum class Verb { kCreate, kDescribe, kUpdate, kDelete, kList };

// What a path names: a collection (id.name empty) or one resource.
struct Target {
  model::ResourceId id;
  bool collection = false;
};

AdminResponse Ok(std::string body) {
  AdminResponse r;
  r.body = std::move(body);
  return r;
}

AdminResponse Error(int status, std::string type, std::string message) {
  return ErrorResponse(ApiError{status, std::move(type), std::move(message)});
}

AdminResponse BadRequest(std::string message) {
  return Error(400, "BadRequestException", std::move(message));
}

// Percent-decoded query parameters; the last of repeated names wins.
bool ParseQuery(std::string_view raw,
                std::map<std::string, std::string, std::less<>>* out) {
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view()
                                        : raw.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key, value;
    if (!PercentDecode(part.substr(0, eq), &key)) return false;
    if (eq != std::string_view::npos &&
        !PercentDecode(part.substr(eq + 1), &value)) {
      return false;
    }
    (*out)[std::move(key)] = std::move(value);
  }
  return true;
}

std::string QueryValue(const std::map<std::string, std::string, std::less<>>& q,
                       std::string_view key) {
  auto it = q.find(key);
  return it == q.end() ? std::string() : it->second;
}

// "limit" in [1, max], or the default when absent.
bool ParseLimit(const std::string& text, int max, int def, int* out) {
  if (text.empty()) {
    *out = def;
    return true;
  }
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out >= 1 &&
         *out <= max;
}

std::optional<Target> Resolve(const std::vector<std::string>& s) {
  Target t;
  if (s.empty() || s[0] != "meshes") return std::nullopt;
  if (s.size() == 1) {
    t.id.kind = ResourceKind::kMesh;
    t.collection = true;
    return t;
  }
  t.id.mesh = s[1];
  if (s.size() == 2) {
    t.id.kind = ResourceKind::kMesh;
    t.id.name = s[1];
    return t;
  }
  for (ResourceKind k :
       {ResourceKind::kVirtualService, ResourceKind::kVirtualRouter,
        ResourceKind::kVirtualNode, ResourceKind::kVirtualGateway}) {
    if (s[2] != CollectionKey(k)) continue;
    if (s.size() > 4) return std::nullopt;
    t.id.kind = k;
    t.collection = s.size() == 3;
    if (!t.collection) t.id.name = s[3];
    return t;
  }
  // Routes and gateway routes hang off the singular parent segment.
  ResourceKind child;
  if (s[2] == "virtualRouter") {
    child = ResourceKind::kRoute;
  } else if (s[2] == "virtualGateway") {
    child = ResourceKind::kGatewayRoute;
  } else {
    return std::nullopt;
  }
  if (s.size() < 5 || s.size() > 6 || s[4] != CollectionKey(child)) {
    return std::nullopt;
  }
  t.id.kind = child;
  t.id.parent = s[3];
  t.collection = s.size() == 5;
  if (!t.collection) t.id.name = s[5];
  return t;
}

std::string OperationName(Verb verb, ResourceKind kind) {
  switch (verb) {
    case Verb::kCreate:
      return "Create" + std::string(model::KindName(kind));
    case Verb::kDescribe:
      return "Describe" + std::string(model::KindName(kind));
    case Verb::kUpdate:
      return "Update" + std::string(model::KindName(kind));
    case Verb::kDelete:
      return "Delete" + std::string(model::KindName(kind));
    case Verb::kList: {
      std::string c(CollectionKey(kind));
      c[0] = static_cast<char>(c[0] - 'a' + 'A');
      return "List" + c;
    }
  }
  return "";
}

AdminResponse FromData(const absl::StatusOr<StoredResource>& r) {
  if (!r.ok()) return ErrorResponse(r.status());
  return Ok(RenderData(*r));
}

}  // namespace

absl::StatusOr<std::unique_ptr<AppMeshApi>> AppMeshApi::Create(
    ResourceStore* store, const ApiAuthConfig& auth) {
  std::optional<CredentialSet> creds;
  if (auth.mode == ApiAuthConfig::Mode::kSigV4 &&
      !auth.credentials_file.empty()) {
    absl::StatusOr<CredentialSet> loaded =
        CredentialSet::LoadFile(auth.credentials_file);
    if (!loaded.ok()) return loaded.status();
    creds = std::move(*loaded);
    LOG(INFO) << "api: App Mesh API accepts SigV4 requests signed with "
              << creds->size() << " key(s) from " << auth.credentials_file;
  } else if (auth.mode == ApiAuthConfig::Mode::kSigV4) {
    LOG(INFO) << "api: App Mesh API is read-only: no --api_credentials_file "
                 "(or --api_auth=none)";
  } else {
    LOG(WARNING) << "api: App Mesh API accepts unsigned requests "
                    "(--api_auth=none)";
  }
  return std::make_unique<AppMeshApi>(store, auth, std::move(creds));
}

AppMeshApi::AppMeshApi(ResourceStore* store, ApiAuthConfig auth,
                       std::optional<CredentialSet> credentials)
    : store_(store),
      auth_(std::move(auth)),
      credentials_(std::move(credentials)),
      clock_([] { return std::chrono::system_clock::now(); }) {}

void AppMeshApi::Register(admin::AdminServer* server) {
  server->HandlePrefix(std::string(kPrefix),
                       [this](const AdminRequest& req) { return Serve(req); });
}

std::optional<AdminResponse> AppMeshApi::Authenticate(
    const AdminRequest& req) const {
  if (auth_.mode == ApiAuthConfig::Mode::kNone) return std::nullopt;
  if (!credentials_) {
    if (req.method == "GET" || req.method == "HEAD") return std::nullopt;
    return Error(403, "ForbiddenException",
                 "the App Mesh API on this agent is read-only: no "
                 "credentials are configured; start the agent with "
                 "--api_credentials_file=<AWS credentials file> to accept "
                 "SigV4-signed writes, or --api_auth=none to accept unsigned "
                 "ones");
  }
  SigV4Result r = VerifySigV4(req, *credentials_, clock_());
  if (r.ok) return std::nullopt;
  VLOG(1) << "api: refused " << req.method << " " << req.path << ": "
          << r.error_type << ": " << r.message;
  return Error(403, r.error_type, r.message);
}

AdminResponse AppMeshApi::Serve(const AdminRequest& req) {
  if (std::optional<AdminResponse> denied = Authenticate(req)) return *denied;

  std::map<std::string, std::string, std::less<>> query;
  if (!ParseQuery(req.query, &query)) {
    return BadRequest("malformed percent-escape in the query string");
  }
  std::string_view rest = req.path.substr(
      std::min(req.path.size(), kPrefix.size()));  // the prefix matched
  std::vector<std::string> segs;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string seg;
    if (!PercentDecode(rest.substr(0, slash), &seg)) {
      return BadRequest("malformed percent-escape in the path " +
                        std::string(req.path));
    }
    segs.push_back(std::move(seg));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool put = req.method == "PUT";

  // Tagging lives beside the resources, addressed by ARN.
  if (segs.size() == 1 &&
      (segs[0] == "tags" || segs[0] == "tag" || segs[0] == "untag")) {
    if (segs[0] == "tags" ? !get : !put) {
      return Error(405, "MethodNotAllowedException",
                   std::string(req.method) + " not allowed on " +
                       std::string(req.path) + "; use " +
                       (segs[0] == "tags" ? "GET" : "PUT"));
    }
    absl::StatusOr<model::ResourceId> id =
        ResourceIdFromArn(QueryValue(query, "resourceArn"));
    if (!id.ok()) return ErrorResponse(id.status());
    absl::StatusOr<StoredResource> res = store_->Describe(*id);
    if (!res.ok()) return ErrorResponse(res.status());
    if (segs[0] == "tags") {
      int limit = 0;
      if (!ParseLimit(QueryValue(query, "limit"), kMaxTagsLimit, kMaxTagsLimit,
                      &limit)) {
        return BadRequest("ListTagsForResource: limit must be 1.." +
                          std::to_string(kMaxTagsLimit));
      }
      size_t begin = 0;
      if (std::string tok = QueryValue(query, "nextToken"); !tok.empty()) {
        auto [end, ec] =
            std::from_chars(tok.data(), tok.data() + tok.size(), begin);
        if (ec != std::errc() || end != tok.data() + tok.size() ||
            begin > res->tags.size()) {
          return BadRequest("ListTagsForResource: invalid nextToken");
        }
      }
      size_t end = std::min(res->tags.size(), begin + limit);
      return Ok(RenderTags(res->tags, begin, end,
                           end < res->tags.size() ? std::to_string(end) : ""));
    }
    Tags tags = res->tags;
    if (segs[0] == "tag") {
      absl::StatusOr<Tags> add = ParseTagResourceBody(req.body);
      if (!add.ok()) return ErrorResponse(add.status());
      for (auto& [k, v] : *add) {
        bool replaced = false;
        for (auto& t : tags) {
          if (t.first == k) {
            t.second = v;
            replaced = true;
          }
        }
        if (!replaced) tags.emplace_back(k, v);
      }
      if (tags.size() > kMaxTagsLimit) {
        return Error(400, "TooManyTagsException",
                     "TagResource: " + id->ToString() + " would have " +
                         std::to_string(tags.size()) + " tags; at most " +
                         std::to_string(kMaxTagsLimit) + " are allowed");
      }
    } else {
      absl::StatusOr<std::vector<std::string>> keys =
          ParseUntagResourceBody(req.body);
      if (!keys.ok()) return ErrorResponse(keys.status());
      std::erase_if(tags, [&](const auto& t) {
        return std::find(keys->begin(), keys->end(), t.first) != keys->end();
      });
    }
    absl::StatusOr<StoredResource> updated =
        store_->ReplaceTags(*id, std::move(tags));
    if (!updated.ok()) return ErrorResponse(updated.status());
    return Ok("{}");
  }

  std::optional<Target> target = Resolve(segs);
  if (!target) {
    return Error(404, "UnknownOperationException",
                 "no App Mesh operation at " + std::string(req.method) + " " +
                     std::string(req.path));
  }
  Verb verb;
  if (target->collection && put) {
    verb = Verb::kCreate;
  } else if (target->collection && get) {
    verb = Verb::kList;
  } else if (!target->collection && get) {
    verb = Verb::kDescribe;
  } else if (!target->collection && put) {
    verb = Verb::kUpdate;
  } else if (!target->collection && req.method == "DELETE") {
    verb = Verb::kDelete;
  } else {
    return Error(
        405, "MethodNotAllowedException",
        std::string(req.method) + " not allowed on " + std::string(req.path) +
            "; use " +
            (target->collection ? "GET or PUT" : "GET, PUT or DELETE"));
  }
  const model::ResourceId& id = target->id;
  const std::string op = OperationName(verb, id.kind);

  switch (verb) {
    case Verb::kList: {
      int limit = 0;
      if (!ParseLimit(QueryValue(query, "limit"), kMaxListLimit,
                      kDefaultListLimit, &limit)) {
        return BadRequest(op + ": limit must be 1.." +
                          std::to_string(kMaxListLimit));
      }
      absl::StatusOr<ListPage> page = store_->List(
          id.kind, id.mesh, id.parent, limit, QueryValue(query, "nextToken"));
      if (!page.ok()) return ErrorResponse(page.status());
      return Ok(RenderList(id.kind, *page));
    }
    case Verb::kDescribe:
      return FromData(store_->Describe(id));
    case Verb::kCreate:
    case Verb::kUpdate: {
      absl::StatusOr<WriteBody> body =
          ParseWriteBody(req.body, id.kind, verb == Verb::kCreate, op);
      if (!body.ok()) return ErrorResponse(body.status());
      absl::StatusOr<StoredResource> r;
      model::ResourceId full = id;
      if (verb == Verb::kCreate) {
        full.name = body->name;
        if (full.kind == ResourceKind::kMesh) full.mesh = body->name;
        r = store_->Create(full, std::move(body->spec_json),
                           std::move(body->tags));
      } else {
        r = store_->Update(full, std::move(body->spec_json));
      }
      if (r.ok()) LOG(INFO) << "api: " << op << " " << full.ToString();
      return FromData(r);
    }
    case Verb::kDelete: {
      absl::StatusOr<StoredResource> r = store_->Delete(id);
      if (r.ok()) LOG(INFO) << "api: " << op << " " << id.ToString();
      return FromData(r);
    }
  }
  return Error(500, "InternalServerErrorException", "unhandled operation");
}

}  // namespace nodemesh::api

// Decoding of App Mesh API specs. One pass over each JSON object: its keys
// are checked against the known ones (unknown: warning) and the known ones
// are looked up with FindMember. Field paths are kept as a chain of stack
// nodes and turned into a string only when a diagnostic is emitted, so a
// valid spec costs no allocation beyond the decoded values.

#include "agent/model/json_codec.h"

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "agent/model/enum_names.h"

namespace nodemesh::model {
namespace {

using rapidjson::Value;

constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
constexpr size_t kNoLen = std::numeric_limits<size_t>::max();

// One step of a field path: ".key" or "[index]". The root has no parent
// and stands for the caller's prefix.
struct PathNode {
  const PathNode* parent = nullptr;
  const char* key = nullptr;
  int index = -1;
};

const char* TypeName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "a value";
}

// Characters, not bytes: UTF-8 continuation bytes do not count.
size_t Utf8Length(const Value& v) {
  const char* s = v.GetString();
  size_t n = v.GetStringLength();
  size_t chars = 0;
  for (size_t i = 0; i < n; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++chars;
  }
  return chars;
}

std::string Quote(const Value& v) {
  std::string s = "\"";
  size_t n = v.GetStringLength();
  s.append(v.GetString(), n < 64 ? n : 64);
  if (n > 64) s += "...";
  s += "\"";
  return s;
}

template <typename E>
std::string Choices() {
  std::string out;
  for (const auto& e : internal::EnumTable(E{})) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

class Decoder {
 public:
  Decoder(const SourceLocation& where, const std::string& resource,
          const std::string& prefix, Diagnostics* diags)
      : where_(where), resource_(resource), prefix_(prefix), diags_(diags) {}

  MeshSpec Mesh(const Value& v, const PathNode& p);
  VirtualServiceSpec VirtualService(const Value& v, const PathNode& p);
  VirtualRouterSpec VirtualRouter(const Value& v, const PathNode& p);
  RouteSpec Route(const Value& v, const PathNode& p);
  VirtualNodeSpec VirtualNode(const Value& v, const PathNode& p);
  VirtualGatewaySpec VirtualGateway(const Value& v, const PathNode& p);
  GatewayRouteSpec GatewayRoute(const Value& v, const PathNode& p);

 private:
  // ---- diagnostics ----
  std::string Render(const PathNode& p) const {
    const PathNode* chain[64];
    int n = 0;
    for (const PathNode* q = &p; q != nullptr && n < 64; q = q->parent) {
      chain[n++] = q;
    }
    std::string out = prefix_;
    for (int i = n - 1; i >= 0; --i) {
      const PathNode* q = chain[i];
      if (q->parent == nullptr) continue;  // the root is the prefix
      if (q->key != nullptr) {
        if (!out.empty()) out += '.';
        out += q->key;
      } else {
        out += '[' + std::to_string(q->index) + ']';
      }
    }
    return out;
  }
  void Error(const PathNode& p, std::string msg) {
    diags_->Error(where_, resource_, Render(p), std::move(msg));
  }
  void Warning(const PathNode& p, std::string msg) {
    diags_->Warning(where_, resource_, Render(p), std::move(msg));
  }

  // ---- objects ----
  // False (and an error) unless `v` is an object. Warns about each key not
  // in `known`.
  bool Object(const Value& v, const PathNode& p,
              std::initializer_list<const char*> known) {
    if (!v.IsObject()) {
      Error(p, std::string("expected an object, got ") + TypeName(v));
      return false;
    }
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      const char* name = it->name.GetString();
      size_t len = it->name.GetStringLength();
      bool found = false;
      for (const char* k : known) {
        if (std::strlen(k) == len && std::memcmp(k, name, len) == 0) {
          found = true;
          break;
        }
      }
      if (!found) {
        PathNode c{&p, nullptr, -1};
        std::string key(name, len);
        c.key = key.c_str();
        Warning(c, "unknown field \"" + key +
                       "\" is ignored (not in the App Mesh API 2019-01-25 "
                       "model); check its spelling");
      }
    }
    return true;
  }

  static const Value* Find(const Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
  }

  // Decodes obj[key] with `f(value, path, T*)` into `*out` when present.
  template <typename T, typename F>
  void Opt(const Value& obj, const PathNode& p, const char* key,
           std::optional<T>* out, F&& f) {
    const Value* v = Find(obj, key);
    if (v == nullptr) return;
    PathNode c{&p, key, -1};
    T t{};
    if (f(*v, c, &t)) *out = std::move(t);
  }

  // Decodes obj[key] into `*out`; an error when it is missing.
  template <typename T, typename F>
  void Req(const Value& obj, const PathNode& p, const char* key, T* out,
           F&& f) {
    PathNode c{&p, key, -1};
    const Value* v = Find(obj, key);
    if (v == nullptr) {
      Error(c, "required field is missing");
      return;
    }
    f(*v, c, out);
  }

  // Decodes the array obj[key] item by item; checks its size.
  template <typename T, typename F>
  bool List(const Value& obj, const PathNode& p, const char* key, bool required,
            size_t min_items, size_t max_items, std::vector<T>* out, F&& f) {
    PathNode c{&p, key, -1};
    const Value* v = Find(obj, key);
    if (v == nullptr) {
      if (required) Error(c, "required field is missing");
      return false;
    }
    if (!v->IsArray()) {
      Error(c, std::string("expected an array, got ") + TypeName(*v));
      return false;
    }
    size_t n = v->Size();
    if (n < min_items || n > max_items) {
      std::string msg = "must hold ";
      if (max_items == kNoLen) {
        msg += "at least " + std::to_string(min_items);
      } else {
        msg += std::to_string(min_items) + " to " + std::to_string(max_items);
      }
      Error(c, msg + " items (has " + std::to_string(n) + ")");
    }
    out->reserve(n);
    for (rapidjson::SizeType i = 0; i < n; ++i) {
      PathNode item{&c, nullptr, static_cast<int>(i)};
      T t{};
      if (f((*v)[i], item, &t)) out->push_back(std::move(t));
    }
    return true;
  }

  // Errors unless exactly one of `set` is true.
  void OneOf(const PathNode& p, std::initializer_list<const char*> names,
             std::initializer_list<bool> set) {
    int count = 0;
    std::string all, found;
    auto name = names.begin();
    for (bool s : set) {
      if (!all.empty()) all += ", ";
      all += *name;
      if (s) {
        ++count;
        if (!found.empty()) found += ", ";
        found += *name;
      }
      ++name;
    }
    if (count == 1) return;
    Error(p, "exactly one of " + all + " must be set; " +
                 (count == 0 ? std::string("none is") : found + " are"));
  }

  // ---- scalars ----
  bool String(const Value& v, const PathNode& p, size_t min_len, size_t max_len,
              std::string* out) {
    if (!v.IsString()) {
      Error(p, std::string("expected a string, got ") + TypeName(v));
      return false;
    }
    size_t len = Utf8Length(v);
    if (len < min_len || len > max_len) {
      std::string msg = "length must be ";
      if (max_len == kNoLen) {
        msg += "at least " + std::to_string(min_len);
      } else {
        msg += std::to_string(min_len) + " to " + std::to_string(max_len);
      }
      Error(p, msg + " characters (is " + std::to_string(len) + ")");
    }
    out->assign(v.GetString(), v.GetStringLength());
    return true;
  }

  bool Int(const Value& v, const PathNode& p, int64_t min, int64_t max,
           int64_t* out) {
    if (!v.IsInt64()) {
      if (v.IsNumber()) {
        Error(p,
              "expected an integer, got a fraction or an out-of-range "
              "number");
      } else {
        Error(p, std::string("expected an integer, got ") + TypeName(v));
      }
      return false;
    }
    int64_t x = v.GetInt64();
    *out = x;
    if (x < min || x > max) {
      Error(p, "must be " +
                   (max == kNoMax ? ">= " + std::to_string(min)
                                  : "between " + std::to_string(min) + " and " +
                                        std::to_string(max)) +
                   " (is " + std::to_string(x) + ")");
    }
    return true;
  }

  bool Int32(const Value& v, const PathNode& p, int64_t min, int64_t max,
             int32_t* out) {
    int64_t x = 0;
    if (max > std::numeric_limits<int32_t>::max()) {
      max = std::numeric_limits<int32_t>::max();
    }
    if (!Int(v, p, min, max, &x)) return false;
    *out = static_cast<int32_t>(x);
    return true;
  }

  bool Bool(const Value& v, const PathNode& p, bool* out) {
    if (!v.IsBool()) {
      Error(p, std::string("expected true or false, got ") + TypeName(v));
      return false;
    }
    *out = v.GetBool();
    return true;
  }

  template <typename E>
  bool Enum(const Value& v, const PathNode& p, E* out) {
    if (!v.IsString()) {
      Error(p, std::string("expected a string, got ") + TypeName(v));
      return false;
    }
    std::string_view s(v.GetString(), v.GetStringLength());
    for (const auto& e : internal::EnumTable(E{})) {
      if (e.name == s) {
        *out = e.value;
        return true;
      }
    }
    Error(p, "must be one of " + Choices<E>() + " (got " + Quote(v) + ")");
    return false;
  }

  // Functors for Opt/Req/List.
  auto Str(size_t min_len = 0, size_t max_len = kNoLen) {
    return [this, min_len, max_len](const Value& v, const PathNode& p,
                                    std::string* o) {
      return String(v, p, min_len, max_len, o);
    };
  }
  auto I32(int64_t min, int64_t max = kNoMax) {
    return [this, min, max](const Value& v, const PathNode& p, int32_t* o) {
      return Int32(v, p, min, max, o);
    };
  }
  auto I64(int64_t min, int64_t max = kNoMax) {
    return [this, min, max](const Value& v, const PathNode& p, int64_t* o) {
      return Int(v, p, min, max, o);
    };
  }
  auto Port() { return I32(1, 65535); }
  auto Flag() {
    return [this](const Value& v, const PathNode& p, bool* o) {
      return Bool(v, p, o);
    };
  }
  template <typename E>
  auto En() {
    return [this](const Value& v, const PathNode& p, E* o) {
      return Enum(v, p, o);
    };
  }
  template <typename T>
  auto By(bool (Decoder::*m)(const Value&, const PathNode&, T*)) {
    return [this, m](const Value& v, const PathNode& p, T* o) {
      return (this->*m)(v, p, o);
    };
  }

  // ---- shapes ----
  bool DecodeDuration(const Value& v, const PathNode& p, Duration* d) {
    if (!Object(v, p, {"value", "unit"})) return false;
    Req(v, p, "value", &d->value, I64(0));
    Req(v, p, "unit", &d->unit, En<DurationUnit>());
    return true;
  }
  auto Dur() { return By(&Decoder::DecodeDuration); }

  bool DecodePortMapping(const Value& v, const PathNode& p, PortMapping* m,
                         bool gateway) {
    if (!Object(v, p, {"port", "protocol"})) return false;
    Req(v, p, "port", &m->port, Port());
    PathNode c{&p, "protocol", -1};
    Req(v, p, "protocol", &m->protocol, En<PortProtocol>());
    if (gateway && m->protocol == PortProtocol::kTcp) {
      Error(c,
            "must be one of http, http2, grpc on a virtual gateway "
            "(got \"tcp\")");
    }
    return true;
  }

  bool DecodeHttpTimeout(const Value& v, const PathNode& p, HttpTimeout* t) {
    if (!Object(v, p, {"perRequest", "idle"})) return false;
    Opt(v, p, "perRequest", &t->per_request, Dur());
    Opt(v, p, "idle", &t->idle, Dur());
    return true;
  }
  bool DecodeTcpTimeout(const Value& v, const PathNode& p, TcpTimeout* t) {
    if (!Object(v, p, {"idle"})) return false;
    Opt(v, p, "idle", &t->idle, Dur());
    return true;
  }

  bool DecodeMatchRange(const Value& v, const PathNode& p, MatchRange* r) {
    if (!Object(v, p, {"start", "end"})) return false;
    Req(v, p, "start", &r->start, I64(std::numeric_limits<int64_t>::min()));
    Req(v, p, "end", &r->end, I64(std::numeric_limits<int64_t>::min()));
    return true;
  }

  bool DecodeHeaderMatchMethod(const Value& v, const PathNode& p,
                               HeaderMatchMethod* m) {
    if (!Object(v, p, {"exact", "prefix", "suffix", "regex", "range"})) {
      return false;
    }
    Opt(v, p, "exact", &m->exact, Str(1, 255));
    Opt(v, p, "prefix", &m->prefix, Str(1, 255));
    Opt(v, p, "suffix", &m->suffix, Str(1, 255));
    Opt(v, p, "regex", &m->regex, Str(1, 255));
    Opt(v, p, "range", &m->range, By(&Decoder::DecodeMatchRange));
    OneOf(p, {"exact", "prefix", "range", "regex", "suffix"},
          {m->exact.has_value(), m->prefix.has_value(), m->range.has_value(),
           m->regex.has_value(), m->suffix.has_value()});
    return true;
  }

  bool DecodeHeaderMatch(const Value& v, const PathNode& p, HeaderMatch* h) {
    if (!Object(v, p, {"name", "invert", "match"})) return false;
    Req(v, p, "name", &h->name, Str(1, 50));
    Opt(v, p, "invert", &h->invert, Flag());
    Opt(v, p, "match", &h->match, By(&Decoder::DecodeHeaderMatchMethod));
    return true;
  }
  auto Header() { return By(&Decoder::DecodeHeaderMatch); }

  bool DecodePathMatch(const Value& v, const PathNode& p, HttpPathMatch* m) {
    if (!Object(v, p, {"exact", "regex"})) return false;
    Opt(v, p, "exact", &m->exact, Str(1, 255));
    Opt(v, p, "regex", &m->regex, Str(1, 255));
    return true;
  }

  bool DecodeQueryParameter(const Value& v, const PathNode& p,
                            HttpQueryParameter* q) {
    if (!Object(v, p, {"name", "match"})) return false;
    Req(v, p, "name", &q->name, Str());
    Opt(v, p, "match", &q->match,
        [this](const Value& mv, const PathNode& mp, QueryParameterMatch* m) {
          if (!Object(mv, mp, {"exact"})) return false;
          Opt(mv, mp, "exact", &m->exact, Str());
          return true;
        });
    return true;
  }
  auto Query() { return By(&Decoder::DecodeQueryParameter); }

  // ---- TLS ----
  enum class CertUse { kListener, kClient };
  bool DecodeCertificate(const Value& v, const PathNode& p, TlsCertificate* c,
                         CertUse use) {
    bool listener = use == CertUse::kListener;
    if (listener ? !Object(v, p, {"acm", "file", "sds"})
                 : !Object(v, p, {"file", "sds"})) {
      return false;
    }
    if (listener) {
      Opt(v, p, "acm", &c->acm,
          [this](const Value& av, const PathNode& ap, TlsAcmCertificate* a) {
            if (!Object(av, ap, {"certificateArn"})) return false;
            Req(av, ap, "certificateArn", &a->certificate_arn, Str(1));
            return true;
          });
    }
    Opt(v, p, "file", &c->file,
        [this](const Value& fv, const PathNode& fp, TlsFileCertificate* f) {
          if (!Object(fv, fp, {"certificateChain", "privateKey"})) {
            return false;
          }
          Req(fv, fp, "certificateChain", &f->certificate_chain, Str(1, 255));
          Req(fv, fp, "privateKey", &f->private_key, Str(1, 255));
          return true;
        });
    Opt(v, p, "sds", &c->sds,
        [this](const Value& sv, const PathNode& sp, TlsSdsCertificate* s) {
          if (!Object(sv, sp, {"secretName"})) return false;
          Req(sv, sp, "secretName", &s->secret_name, Str(1));
          return true;
        });
    if (listener) {
      OneOf(p, {"acm", "file", "sds"},
            {c->acm.has_value(), c->file.has_value(), c->sds.has_value()});
    } else {
      OneOf(p, {"file", "sds"}, {c->file.has_value(), c->sds.has_value()});
    }
    return true;
  }

  bool DecodeValidation(const Value& v, const PathNode& p,
                        TlsValidationContext* c, bool allow_acm) {
    if (!Object(v, p, {"trust", "subjectAlternativeNames"})) return false;
    Req(v, p, "trust", &c->trust,
        [this, allow_acm](const Value& tv, const PathNode& tp,
                          TlsValidationTrust* t) {
          if (allow_acm ? !Object(tv, tp, {"acm", "file", "sds"})
                        : !Object(tv, tp, {"file", "sds"})) {
            return false;
          }
          if (allow_acm) {
            Opt(tv, tp, "acm", &t->acm,
                [this](const Value& av, const PathNode& ap, TlsAcmTrust* a) {
                  if (!Object(av, ap, {"certificateAuthorityArns"})) {
                    return false;
                  }
                  List(av, ap, "certificateAuthorityArns", true, 1, 3,
                       &a->certificate_authority_arns, Str(1));
                  return true;
                });
          }
          Opt(tv, tp, "file", &t->file,
              [this](const Value& fv, const PathNode& fp, TlsFileTrust* f) {
                if (!Object(fv, fp, {"certificateChain"})) return false;
                Req(fv, fp, "certificateChain", &f->certificate_chain,
                    Str(1, 255));
                return true;
              });
          Opt(tv, tp, "sds", &t->sds,
              [this](const Value& sv, const PathNode& sp, TlsSdsTrust* s) {
                if (!Object(sv, sp, {"secretName"})) return false;
                Req(sv, sp, "secretName", &s->secret_name, Str(1));
                return true;
              });
          if (allow_acm) {
            OneOf(
                tp, {"acm", "file", "sds"},
                {t->acm.has_value(), t->file.has_value(), t->sds.has_value()});
          } else {
            OneOf(tp, {"file", "sds"},
                  {t->file.has_value(), t->sds.has_value()});
          }
          return true;
        });
    Opt(v, p, "subjectAlternativeNames", &c->subject_alternative_names,
        [this](const Value& sv, const PathNode& sp,
               SubjectAlternativeNames* s) {
          if (!Object(sv, sp, {"match"})) return false;
          Req(sv, sp, "match", s,
              [this](const Value& mv, const PathNode& mp,
                     SubjectAlternativeNames* m) {
                if (!Object(mv, mp, {"exact"})) return false;
                List(mv, mp, "exact", true, 0, kNoLen, &m->match_exact,
                     Str(1, 254));
                return true;
              });
          return true;
        });
    return true;
  }

  bool DecodeListenerTls(const Value& v, const PathNode& p, ListenerTls* t) {
    if (!Object(v, p, {"mode", "certificate", "validation"})) return false;
    Req(v, p, "mode", &t->mode, En<TlsMode>());
    Req(v, p, "certificate", &t->certificate,
        [this](const Value& cv, const PathNode& cp, TlsCertificate* c) {
          return DecodeCertificate(cv, cp, c, CertUse::kListener);
        });
    Opt(v, p, "validation", &t->validation,
        [this](const Value& vv, const PathNode& vp, TlsValidationContext* c) {
          return DecodeValidation(vv, vp, c, /*allow_acm=*/false);
        });
    return true;
  }

  bool DecodeClientPolicy(const Value& v, const PathNode& p, ClientPolicy* c) {
    if (!Object(v, p, {"tls"})) return false;
    Opt(v, p, "tls", &c->tls,
        [this](const Value& tv, const PathNode& tp, ClientPolicyTls* t) {
          if (!Object(tv, tp,
                      {"enforce", "ports", "certificate", "validation"})) {
            return false;
          }
          Opt(tv, tp, "enforce", &t->enforce, Flag());
          List(tv, tp, "ports", false, 0, kNoLen, &t->ports, Port());
          Opt(tv, tp, "certificate", &t->certificate,
              [this](const Value& cv, const PathNode& cp, TlsCertificate* c) {
                return DecodeCertificate(cv, cp, c, CertUse::kClient);
              });
          Req(tv, tp, "validation", &t->validation,
              [this](const Value& vv, const PathNode& vp,
                     TlsValidationContext* c) {
                return DecodeValidation(vv, vp, c, /*allow_acm=*/true);
              });
          return true;
        });
    return true;
  }

  bool DecodeBackendDefaults(const Value& v, const PathNode& p,
                             BackendDefaults* b) {
    if (!Object(v, p, {"clientPolicy"})) return false;
    Opt(v, p, "clientPolicy", &b->client_policy,
        By(&Decoder::DecodeClientPolicy));
    return true;
  }

  // ---- listener parts ----
  bool DecodeHealthCheck(const Value& v, const PathNode& p,
                         HealthCheckPolicy* h, bool gateway) {
    if (!Object(v, p,
                {"healthyThreshold", "intervalMillis", "path", "port",
                 "protocol", "timeoutMillis", "unhealthyThreshold"})) {
      return false;
    }
    Req(v, p, "healthyThreshold", &h->healthy_threshold, I32(2, 10));
    Req(v, p, "intervalMillis", &h->interval_millis, I64(5000, 300000));
    Opt(v, p, "path", &h->path, Str());
    Opt(v, p, "port", &h->port, Port());
    Req(v, p, "protocol", &h->protocol, En<PortProtocol>());
    if (gateway && h->protocol == PortProtocol::kTcp) {
      PathNode c{&p, "protocol", -1};
      Error(c,
            "must be one of http, http2, grpc on a virtual gateway "
            "(got \"tcp\")");
    }
    Req(v, p, "timeoutMillis", &h->timeout_millis, I64(2000, 60000));
    Req(v, p, "unhealthyThreshold", &h->unhealthy_threshold, I32(2, 10));
    return true;
  }

  bool DecodeConnectionPool(const Value& v, const PathNode& p,
                            ConnectionPool* c, bool gateway) {
    if (gateway ? !Object(v, p, {"http", "http2", "grpc"})
                : !Object(v, p, {"tcp", "http", "http2", "grpc"})) {
      return false;
    }
    if (!gateway) {
      Opt(v, p, "tcp", &c->tcp,
          [this](const Value& tv, const PathNode& tp, TcpConnectionPool* t) {
            if (!Object(tv, tp, {"maxConnections"})) return false;
            Req(tv, tp, "maxConnections", &t->max_connections, I32(1));
            return true;
          });
    }
    Opt(v, p, "http", &c->http,
        [this](const Value& hv, const PathNode& hp, HttpConnectionPool* h) {
          if (!Object(hv, hp, {"maxConnections", "maxPendingRequests"})) {
            return false;
          }
          Req(hv, hp, "maxConnections", &h->max_connections, I32(1));
          Opt(hv, hp, "maxPendingRequests", &h->max_pending_requests, I32(1));
          return true;
        });
    auto requests = [this](const Value& rv, const PathNode& rp,
                           RequestConnectionPool* r) {
      if (!Object(rv, rp, {"maxRequests"})) return false;
      Req(rv, rp, "maxRequests", &r->max_requests, I32(1));
      return true;
    };
    Opt(v, p, "http2", &c->http2, requests);
    Opt(v, p, "grpc", &c->grpc, requests);
    if (gateway) {
      OneOf(p, {"grpc", "http", "http2"},
            {c->grpc.has_value(), c->http.has_value(), c->http2.has_value()});
    } else {
      OneOf(p, {"grpc", "http", "http2", "tcp"},
            {c->grpc.has_value(), c->http.has_value(), c->http2.has_value(),
             c->tcp.has_value()});
    }
    return true;
  }

  bool DecodeLogging(const Value& v, const PathNode& p, Logging* l);
  bool DecodeListener(const Value& v, const PathNode& p, Listener* l);
  bool DecodeBackend(const Value& v, const PathNode& p, Backend* b);
  bool DecodeServiceDiscovery(const Value& v, const PathNode& p,
                              ServiceDiscovery* s);

  // ---- routes ----
  bool DecodeWeightedTarget(const Value& v, const PathNode& p,
                            WeightedTarget* t) {
    if (!Object(v, p, {"virtualNode", "weight", "port"})) return false;
    Req(v, p, "virtualNode", &t->virtual_node, Str(1, 255));
    Req(v, p, "weight", &t->weight, I32(0, 100));
    Opt(v, p, "port", &t->port, Port());
    return true;
  }
  bool DecodeRouteAction(const Value& v, const PathNode& p, RouteAction* a) {
    if (!Object(v, p, {"weightedTargets"})) return false;
    List(v, p, "weightedTargets", true, 1, 10, &a->weighted_targets,
         By(&Decoder::DecodeWeightedTarget));
    return true;
  }
  bool DecodeRetryPolicy(const Value& v, const PathNode& p, RetryPolicy* r,
                         bool grpc);
  bool DecodeHttpRoute(const Value& v, const PathNode& p, HttpRoute* r,
                       bool http2);
  bool DecodeGrpcRoute(const Value& v, const PathNode& p, GrpcRoute* r);
  bool DecodeTcpRoute(const Value& v, const PathNode& p, TcpRoute* r);

  // ---- gateway routes ----
  bool DecodeHostnameMatch(const Value& v, const PathNode& p,
                           GatewayRouteHostnameMatch* h) {
    if (!Object(v, p, {"exact", "suffix"})) return false;
    Opt(v, p, "exact", &h->exact, Str(1, 253));
    Opt(v, p, "suffix", &h->suffix, Str(1, 253));
    return true;
  }
  bool DecodeTarget(const Value& v, const PathNode& p, GatewayRouteTarget* t) {
    if (!Object(v, p, {"virtualService", "port"})) return false;
    Req(v, p, "virtualService", &t->virtual_service_name,
        [this](const Value& sv, const PathNode& sp, std::string* name) {
          if (!Object(sv, sp, {"virtualServiceName"})) return false;
          Req(sv, sp, "virtualServiceName", name, Str(1, 255));
          return true;
        });
    Opt(v, p, "port", &t->port, Port());
    return true;
  }
  bool DecodeHostnameRewrite(const Value& v, const PathNode& p,
                             GatewayRouteHostnameRewrite* h) {
    if (!Object(v, p, {"defaultTargetHostname"})) return false;
    Opt(v, p, "defaultTargetHostname", &h->default_target_hostname,
        En<DefaultGatewayRouteRewrite>());
    return true;
  }
  bool DecodeHttpGatewayRoute(const Value& v, const PathNode& p,
                              HttpGatewayRoute* r);
  bool DecodeGrpcGatewayRoute(const Value& v, const PathNode& p,
                              GrpcGatewayRoute* r);

  const SourceLocation& where_;
  const std::string& resource_;
  const std::string& prefix_;
  Diagnostics* diags_;
};

// ---------------------------------------------------------------------------

MeshSpec Decoder::Mesh(const Value& v, const PathNode& p) {
  MeshSpec s;
  if (!Object(v, p, {"egressFilter", "serviceDiscovery"})) return s;
  Opt(v, p, "egressFilter", &s.egress_filter,
      [this](const Value& ev, const PathNode& ep, EgressFilter* e) {
        if (!Object(ev, ep, {"type"})) return false;
        Req(ev, ep, "type", &e->type, En<EgressFilterType>());
        return true;
      });
  Opt(v, p, "serviceDiscovery", &s.service_discovery,
      [this](const Value& dv, const PathNode& dp, MeshServiceDiscovery* d) {
        if (!Object(dv, dp, {"ipPreference"})) return false;
        Opt(dv, dp, "ipPreference", &d->ip_preference, En<IpPreference>());
        return true;
      });
  return s;
}

VirtualServiceSpec Decoder::VirtualService(const Value& v, const PathNode& p) {
  VirtualServiceSpec s;
  if (!Object(v, p, {"provider"})) return s;
  Opt(v, p, "provider", &s.provider,
      [this](const Value& pv, const PathNode& pp, VirtualServiceProvider* pr) {
        if (!Object(pv, pp, {"virtualNode", "virtualRouter"})) return false;
        Opt(pv, pp, "virtualNode", &pr->virtual_node,
            [this](const Value& nv, const PathNode& np,
                   VirtualNodeServiceProvider* n) {
              if (!Object(nv, np, {"virtualNodeName"})) return false;
              Req(nv, np, "virtualNodeName", &n->virtual_node_name,
                  Str(1, 255));
              return true;
            });
        Opt(pv, pp, "virtualRouter", &pr->virtual_router,
            [this](const Value& rv, const PathNode& rp,
                   VirtualRouterServiceProvider* r) {
              if (!Object(rv, rp, {"virtualRouterName"})) return false;
              Req(rv, rp, "virtualRouterName", &r->virtual_router_name,
                  Str(1, 255));
              return true;
            });
        OneOf(pp, {"virtualNode", "virtualRouter"},
              {pr->virtual_node.has_value(), pr->virtual_router.has_value()});
        return true;
      });
  return s;
}

VirtualRouterSpec Decoder::VirtualRouter(const Value& v, const PathNode& p) {
  VirtualRouterSpec s;
  if (!Object(v, p, {"listeners"})) return s;
  List(v, p, "listeners", false, 0, kNoLen, &s.listeners,
       [this](const Value& lv, const PathNode& lp, VirtualRouterListener* l) {
         if (!Object(lv, lp, {"portMapping"})) return false;
         Req(lv, lp, "portMapping", &l->port_mapping,
             [this](const Value& mv, const PathNode& mp, PortMapping* m) {
               return DecodePortMapping(mv, mp, m, false);
             });
         return true;
       });
  return s;
}

bool Decoder::DecodeRetryPolicy(const Value& v, const PathNode& p,
                                RetryPolicy* r, bool grpc) {
  if (grpc ? !Object(v, p,
                     {"maxRetries", "perRetryTimeout", "httpRetryEvents",
                      "tcpRetryEvents", "grpcRetryEvents"})
           : !Object(v, p,
                     {"maxRetries", "perRetryTimeout", "httpRetryEvents",
                      "tcpRetryEvents"})) {
    return false;
  }
  Req(v, p, "maxRetries", &r->max_retries, I64(0));
  Req(v, p, "perRetryTimeout", &r->per_retry_timeout, Dur());
  List(v, p, "httpRetryEvents", false, 1, 25, &r->http_retry_events,
       [this](const Value& ev, const PathNode& ep, std::string* e) {
         if (!String(ev, ep, 1, 25, e)) return false;
         if (*e != "server-error" && *e != "gateway-error" &&
             *e != "client-error" && *e != "stream-error") {
           Warning(ep, "\"" + *e +
                           "\" is not a documented HTTP retry event "
                           "(server-error, gateway-error, client-error, "
                           "stream-error); it is ignored");
         }
         return true;
       });
  List(v, p, "tcpRetryEvents", false, 1, 1, &r->tcp_retry_events,
       En<TcpRetryEvent>());
  if (grpc) {
    List(v, p, "grpcRetryEvents", false, 1, 5, &r->grpc_retry_events,
         En<GrpcRetryEvent>());
  }
  return true;
}

bool Decoder::DecodeHttpRoute(const Value& v, const PathNode& p, HttpRoute* r,
                              bool /*http2*/) {
  if (!Object(v, p, {"match", "action", "retryPolicy", "timeout"})) {
    return false;
  }
  Req(v, p, "match", &r->match,
      [this](const Value& mv, const PathNode& mp, HttpRouteMatch* m) {
        if (!Object(mv, mp,
                    {"prefix", "path", "method", "scheme", "headers",
                     "queryParameters", "port"})) {
          return false;
        }
        Opt(mv, mp, "prefix", &m->prefix, Str());
        Opt(mv, mp, "path", &m->path, By(&Decoder::DecodePathMatch));
        Opt(mv, mp, "method", &m->method, En<HttpMethod>());
        Opt(mv, mp, "scheme", &m->scheme, En<HttpScheme>());
        List(mv, mp, "headers", false, 1, 10, &m->headers, Header());
        List(mv, mp, "queryParameters", false, 1, 10, &m->query_parameters,
             Query());
        Opt(mv, mp, "port", &m->port, Port());
        return true;
      });
  Req(v, p, "action", &r->action, By(&Decoder::DecodeRouteAction));
  Opt(v, p, "retryPolicy", &r->retry_policy,
      [this](const Value& rv, const PathNode& rp, RetryPolicy* rr) {
        return DecodeRetryPolicy(rv, rp, rr, false);
      });
  Opt(v, p, "timeout", &r->timeout, By(&Decoder::DecodeHttpTimeout));
  return true;
}

bool Decoder::DecodeGrpcRoute(const Value& v, const PathNode& p, GrpcRoute* r) {
  if (!Object(v, p, {"match", "action", "retryPolicy", "timeout"})) {
    return false;
  }
  Req(v, p, "match", &r->match,
      [this](const Value& mv, const PathNode& mp, GrpcRouteMatch* m) {
        if (!Object(mv, mp,
                    {"serviceName", "methodName", "metadata", "port"})) {
          return false;
        }
        Opt(mv, mp, "serviceName", &m->service_name, Str());
        Opt(mv, mp, "methodName", &m->method_name, Str(1, 50));
        if (m->method_name && !m->service_name) {
          PathNode c{&mp, "methodName", -1};
          Error(c,
                "needs serviceName (a gRPC call's path is "
                "/<serviceName>/<methodName>); add it, or drop methodName");
        }
        List(mv, mp, "metadata", false, 1, 10, &m->metadata, Header());
        Opt(mv, mp, "port", &m->port, Port());
        return true;
      });
  Req(v, p, "action", &r->action, By(&Decoder::DecodeRouteAction));
  Opt(v, p, "retryPolicy", &r->retry_policy,
      [this](const Value& rv, const PathNode& rp, RetryPolicy* rr) {
        return DecodeRetryPolicy(rv, rp, rr, true);
      });
  Opt(v, p, "timeout", &r->timeout, By(&Decoder::DecodeHttpTimeout));
  return true;
}

bool Decoder::DecodeTcpRoute(const Value& v, const PathNode& p, TcpRoute* r) {
  if (!Object(v, p, {"match", "action", "timeout"})) return false;
  Opt(v, p, "match", &r->match,
      [this](const Value& mv, const PathNode& mp, TcpRouteMatch* m) {
        if (!Object(mv, mp, {"port"})) return false;
        Opt(mv, mp, "port", &m->port, Port());
        return true;
      });
  Req(v, p, "action", &r->action, By(&Decoder::DecodeRouteAction));
  Opt(v, p, "timeout", &r->timeout, By(&Decoder::DecodeTcpTimeout));
  return true;
}

RouteSpec Decoder::Route(const Value& v, const PathNode& p) {
  RouteSpec s;
  if (!Object(
          v, p,
          {"priority", "httpRoute", "http2Route", "grpcRoute", "tcpRoute"})) {
    return s;
  }
  Opt(v, p, "priority", &s.priority, I32(0, 1000));
  Opt(v, p, "httpRoute", &s.http_route,
      [this](const Value& rv, const PathNode& rp, HttpRoute* r) {
        return DecodeHttpRoute(rv, rp, r, false);
      });
  Opt(v, p, "http2Route", &s.http2_route,
      [this](const Value& rv, const PathNode& rp, HttpRoute* r) {
        return DecodeHttpRoute(rv, rp, r, true);
      });
  Opt(v, p, "grpcRoute", &s.grpc_route, By(&Decoder::DecodeGrpcRoute));
  Opt(v, p, "tcpRoute", &s.tcp_route, By(&Decoder::DecodeTcpRoute));
  OneOf(p, {"grpcRoute", "http2Route", "httpRoute", "tcpRoute"},
        {s.grpc_route.has_value(), s.http2_route.has_value(),
         s.http_route.has_value(), s.tcp_route.has_value()});
  return s;
}

bool Decoder::DecodeLogging(const Value& v, const PathNode& p, Logging* l) {
  if (!Object(v, p, {"accessLog"})) return false;
  Opt(v, p, "accessLog", &l->access_log,
      [this](const Value& av, const PathNode& ap, AccessLog* a) {
        if (!Object(av, ap, {"file"})) return false;
        Opt(av, ap, "file", &a->file,
            [this](const Value& fv, const PathNode& fp, FileAccessLog* f) {
              if (!Object(fv, fp, {"path", "format"})) return false;
              Req(fv, fp, "path", &f->path, Str(1, 255));
              Opt(fv, fp, "format", &f->format,
                  [this](const Value& ov, const PathNode& op,
                         LoggingFormat* o) {
                    if (!Object(ov, op, {"json", "text"})) return false;
                    std::vector<JsonFormatRef> json;
                    if (List(ov, op, "json", false, 0, kNoLen, &json,
                             [this](const Value& jv, const PathNode& jp,
                                    JsonFormatRef* j) {
                               if (!Object(jv, jp, {"key", "value"})) {
                                 return false;
                               }
                               Req(jv, jp, "key", &j->key, Str(1, 100));
                               Req(jv, jp, "value", &j->value, Str(1, 100));
                               return true;
                             })) {
                      o->json = std::move(json);
                    }
                    Opt(ov, op, "text", &o->text, Str(1, 1000));
                    OneOf(op, {"json", "text"},
                          {o->json.has_value(), o->text.has_value()});
                    return true;
                  });
              return true;
            });
        OneOf(ap, {"file"}, {a->file.has_value()});
        return true;
      });
  return true;
}

bool Decoder::DecodeListener(const Value& v, const PathNode& p, Listener* l) {
  if (!Object(v, p,
              {"portMapping", "connectionPool", "healthCheck",
               "outlierDetection", "timeout", "tls"})) {
    return false;
  }
  Req(v, p, "portMapping", &l->port_mapping,
      [this](const Value& mv, const PathNode& mp, PortMapping* m) {
        return DecodePortMapping(mv, mp, m, false);
      });
  Opt(v, p, "connectionPool", &l->connection_pool,
      [this](const Value& cv, const PathNode& cp, ConnectionPool* c) {
        return DecodeConnectionPool(cv, cp, c, false);
      });
  Opt(v, p, "healthCheck", &l->health_check,
      [this](const Value& hv, const PathNode& hp, HealthCheckPolicy* h) {
        return DecodeHealthCheck(hv, hp, h, false);
      });
  Opt(v, p, "outlierDetection", &l->outlier_detection,
      [this](const Value& ov, const PathNode& op, OutlierDetection* o) {
        if (!Object(ov, op,
                    {"baseEjectionDuration", "interval", "maxEjectionPercent",
                     "maxServerErrors"})) {
          return false;
        }
        Req(ov, op, "baseEjectionDuration", &o->base_ejection_duration, Dur());
        Req(ov, op, "interval", &o->interval, Dur());
        Req(ov, op, "maxEjectionPercent", &o->max_ejection_percent,
            I32(0, 100));
        Req(ov, op, "maxServerErrors", &o->max_server_errors, I64(1));
        return true;
      });
  Opt(v, p, "timeout", &l->timeout,
      [this](const Value& tv, const PathNode& tp, ListenerTimeout* t) {
        if (!Object(tv, tp, {"grpc", "http", "http2", "tcp"})) return false;
        Opt(tv, tp, "grpc", &t->grpc, By(&Decoder::DecodeHttpTimeout));
        Opt(tv, tp, "http", &t->http, By(&Decoder::DecodeHttpTimeout));
        Opt(tv, tp, "http2", &t->http2, By(&Decoder::DecodeHttpTimeout));
        Opt(tv, tp, "tcp", &t->tcp, By(&Decoder::DecodeTcpTimeout));
        OneOf(tp, {"grpc", "http", "http2", "tcp"},
              {t->grpc.has_value(), t->http.has_value(), t->http2.has_value(),
               t->tcp.has_value()});
        return true;
      });
  Opt(v, p, "tls", &l->tls, By(&Decoder::DecodeListenerTls));
  return true;
}

bool Decoder::DecodeBackend(const Value& v, const PathNode& p, Backend* b) {
  if (!Object(v, p, {"virtualService"})) return false;
  Opt(v, p, "virtualService", &b->virtual_service,
      [this](const Value& sv, const PathNode& sp, VirtualServiceBackend* s) {
        if (!Object(sv, sp, {"virtualServiceName", "clientPolicy"})) {
          return false;
        }
        Req(sv, sp, "virtualServiceName", &s->virtual_service_name, Str(1));
        Opt(sv, sp, "clientPolicy", &s->client_policy,
            By(&Decoder::DecodeClientPolicy));
        return true;
      });
  OneOf(p, {"virtualService"}, {b->virtual_service.has_value()});
  return true;
}

bool Decoder::DecodeServiceDiscovery(const Value& v, const PathNode& p,
                                     ServiceDiscovery* s) {
  if (!Object(v, p, {"dns", "awsCloudMap"})) return false;
  Opt(v, p, "dns", &s->dns,
      [this](const Value& dv, const PathNode& dp, DnsServiceDiscovery* d) {
        if (!Object(dv, dp, {"hostname", "responseType", "ipPreference"})) {
          return false;
        }
        Req(dv, dp, "hostname", &d->hostname, Str(1));
        Opt(dv, dp, "responseType", &d->response_type, En<DnsResponseType>());
        Opt(dv, dp, "ipPreference", &d->ip_preference, En<IpPreference>());
        return true;
      });
  Opt(v, p, "awsCloudMap", &s->aws_cloud_map,
      [this](const Value& cv, const PathNode& cp,
             AwsCloudMapServiceDiscovery* c) {
        if (!Object(cv, cp,
                    {"namespaceName", "serviceName", "attributes",
                     "ipPreference"})) {
          return false;
        }
        Req(cv, cp, "namespaceName", &c->namespace_name, Str(1, 1024));
        Req(cv, cp, "serviceName", &c->service_name, Str(1, 1024));
        List(cv, cp, "attributes", false, 0, kNoLen, &c->attributes,
             [this](const Value& av, const PathNode& ap,
                    AwsCloudMapInstanceAttribute* a) {
               if (!Object(av, ap, {"key", "value"})) return false;
               Req(av, ap, "key", &a->key, Str(1, 255));
               Req(av, ap, "value", &a->value, Str(1, 1024));
               return true;
             });
        Opt(cv, cp, "ipPreference", &c->ip_preference, En<IpPreference>());
        return true;
      });
  OneOf(p, {"awsCloudMap", "dns"},
        {s->aws_cloud_map.has_value(), s->dns.has_value()});
  return true;
}

VirtualNodeSpec Decoder::VirtualNode(const Value& v, const PathNode& p) {
  VirtualNodeSpec s;
  if (!Object(v, p,
              {"backendDefaults", "backends", "listeners", "logging",
               "serviceDiscovery"})) {
    return s;
  }
  Opt(v, p, "backendDefaults", &s.backend_defaults,
      By(&Decoder::DecodeBackendDefaults));
  List(v, p, "backends", false, 0, kNoLen, &s.backends,
       By(&Decoder::DecodeBackend));
  List(v, p, "listeners", false, 0, kNoLen, &s.listeners,
       By(&Decoder::DecodeListener));
  Opt(v, p, "logging", &s.logging, By(&Decoder::DecodeLogging));
  Opt(v, p, "serviceDiscovery", &s.service_discovery,
      By(&Decoder::DecodeServiceDiscovery));
  return s;
}

VirtualGatewaySpec Decoder::VirtualGateway(const Value& v, const PathNode& p) {
  VirtualGatewaySpec s;
  if (!Object(v, p, {"backendDefaults", "listeners", "logging"})) return s;
  Opt(v, p, "backendDefaults", &s.backend_defaults,
      By(&Decoder::DecodeBackendDefaults));
  List(v, p, "listeners", true, 0, kNoLen, &s.listeners,
       [this](const Value& lv, const PathNode& lp, VirtualGatewayListener* l) {
         if (!Object(lv, lp,
                     {"portMapping", "connectionPool", "healthCheck", "tls"})) {
           return false;
         }
         Req(lv, lp, "portMapping", &l->port_mapping,
             [this](const Value& mv, const PathNode& mp, PortMapping* m) {
               return DecodePortMapping(mv, mp, m, true);
             });
         Opt(lv, lp, "connectionPool", &l->connection_pool,
             [this](const Value& cv, const PathNode& cp, ConnectionPool* c) {
               return DecodeConnectionPool(cv, cp, c, true);
             });
         Opt(lv, lp, "healthCheck", &l->health_check,
             [this](const Value& hv, const PathNode& hp, HealthCheckPolicy* h) {
               return DecodeHealthCheck(hv, hp, h, true);
             });
         Opt(lv, lp, "tls", &l->tls, By(&Decoder::DecodeListenerTls));
         return true;
       });
  Opt(v, p, "logging", &s.logging, By(&Decoder::DecodeLogging));
  return s;
}

bool Decoder::DecodeHttpGatewayRoute(const Value& v, const PathNode& p,
                                     HttpGatewayRoute* r) {
  if (!Object(v, p, {"match", "action"})) return false;
  Req(v, p, "match", &r->match,
      [this](const Value& mv, const PathNode& mp, HttpGatewayRouteMatch* m) {
        if (!Object(mv, mp,
                    {"prefix", "path", "hostname", "method", "headers",
                     "queryParameters", "port"})) {
          return false;
        }
        Opt(mv, mp, "prefix", &m->prefix, Str());
        Opt(mv, mp, "path", &m->path, By(&Decoder::DecodePathMatch));
        Opt(mv, mp, "hostname", &m->hostname,
            By(&Decoder::DecodeHostnameMatch));
        Opt(mv, mp, "method", &m->method, En<HttpMethod>());
        List(mv, mp, "headers", false, 1, 10, &m->headers, Header());
        List(mv, mp, "queryParameters", false, 1, 10, &m->query_parameters,
             Query());
        Opt(mv, mp, "port", &m->port, Port());
        return true;
      });
  Req(v, p, "action", &r->action,
      [this](const Value& av, const PathNode& ap, HttpGatewayRouteAction* a) {
        if (!Object(av, ap, {"target", "rewrite"})) return false;
        Req(av, ap, "target", &a->target, By(&Decoder::DecodeTarget));
        Opt(av, ap, "rewrite", &a->rewrite,
            [this](const Value& wv, const PathNode& wp,
                   HttpGatewayRouteRewrite* w) {
              if (!Object(wv, wp, {"hostname", "path", "prefix"})) {
                return false;
              }
              Opt(wv, wp, "hostname", &w->hostname,
                  By(&Decoder::DecodeHostnameRewrite));
              Opt(wv, wp, "path", &w->path,
                  [this](const Value& xv, const PathNode& xp,
                         HttpGatewayRoutePathRewrite* x) {
                    if (!Object(xv, xp, {"exact"})) return false;
                    Opt(xv, xp, "exact", &x->exact, Str(1, 255));
                    return true;
                  });
              Opt(wv, wp, "prefix", &w->prefix,
                  [this](const Value& xv, const PathNode& xp,
                         HttpGatewayRoutePrefixRewrite* x) {
                    if (!Object(xv, xp, {"defaultPrefix", "value"})) {
                      return false;
                    }
                    Opt(xv, xp, "defaultPrefix", &x->default_prefix,
                        En<DefaultGatewayRouteRewrite>());
                    Opt(xv, xp, "value", &x->value, Str(1, 255));
                    return true;
                  });
              return true;
            });
        return true;
      });
  return true;
}

bool Decoder::DecodeGrpcGatewayRoute(const Value& v, const PathNode& p,
                                     GrpcGatewayRoute* r) {
  if (!Object(v, p, {"match", "action"})) return false;
  Req(v, p, "match", &r->match,
      [this](const Value& mv, const PathNode& mp, GrpcGatewayRouteMatch* m) {
        if (!Object(mv, mp, {"serviceName", "hostname", "metadata", "port"})) {
          return false;
        }
        Opt(mv, mp, "serviceName", &m->service_name, Str());
        Opt(mv, mp, "hostname", &m->hostname,
            By(&Decoder::DecodeHostnameMatch));
        List(mv, mp, "metadata", false, 1, 10, &m->metadata, Header());
        Opt(mv, mp, "port", &m->port, Port());
        return true;
      });
  Req(v, p, "action", &r->action,
      [this](const Value& av, const PathNode& ap, GrpcGatewayRouteAction* a) {
        if (!Object(av, ap, {"target", "rewrite"})) return false;
        Req(av, ap, "target", &a->target, By(&Decoder::DecodeTarget));
        Opt(av, ap, "rewrite", &a->rewrite,
            [this](const Value& wv, const PathNode& wp,
                   GrpcGatewayRouteRewrite* w) {
              if (!Object(wv, wp, {"hostname"})) return false;
              Opt(wv, wp, "hostname", &w->hostname,
                  By(&Decoder::DecodeHostnameRewrite));
              return true;
            });
        return true;
      });
  return true;
}

GatewayRouteSpec Decoder::GatewayRoute(const Value& v, const PathNode& p) {
  GatewayRouteSpec s;
  if (!Object(v, p, {"priority", "httpRoute", "http2Route", "grpcRoute"})) {
    return s;
  }
  Opt(v, p, "priority", &s.priority, I32(0, 1000));
  Opt(v, p, "httpRoute", &s.http_route, By(&Decoder::DecodeHttpGatewayRoute));
  Opt(v, p, "http2Route", &s.http2_route, By(&Decoder::DecodeHttpGatewayRoute));
  Opt(v, p, "grpcRoute", &s.grpc_route, By(&Decoder::DecodeGrpcGatewayRoute));
  OneOf(p, {"grpcRoute", "http2Route", "httpRoute"},
        {s.grpc_route.has_value(), s.http2_route.has_value(),
         s.http_route.has_value()});
  return s;
}

}  // namespace

AnySpec DecodeSpec(ResourceKind kind, const rapidjson::Value& spec,
                   const SourceLocation& where, const std::string& resource,
                   const std::string& path_prefix, Diagnostics* diags) {
  Decoder d(where, resource, path_prefix, diags);
  PathNode root;
  switch (kind) {
    case ResourceKind::kMesh:
      return d.Mesh(spec, root);
    case ResourceKind::kVirtualService:
      return d.VirtualService(spec, root);
    case ResourceKind::kVirtualRouter:
      return d.VirtualRouter(spec, root);
    case ResourceKind::kRoute:
      return d.Route(spec, root);
    case ResourceKind::kVirtualNode:
      return d.VirtualNode(spec, root);
    case ResourceKind::kVirtualGateway:
      return d.VirtualGateway(spec, root);
    case ResourceKind::kGatewayRoute:
      return d.GatewayRoute(spec, root);
  }
  return MeshSpec{};
}

}  // namespace nodemesh::model

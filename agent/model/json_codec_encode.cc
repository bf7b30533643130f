// Encoding of specs back into the App Mesh API JSON shape. Keys are string
// literals (referenced, not copied); values are copied into `alloc`.

#include <string>
#include <variant>

#include "agent/model/enum_names.h"
#include "agent/model/json_codec.h"

namespace nodemesh::model {
namespace {

using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

class Encoder {
 public:
  explicit Encoder(Alloc& alloc) : a_(alloc) {}

  void Encode(const MeshSpec& s, Value* o);
  void Encode(const VirtualServiceSpec& s, Value* o);
  void Encode(const VirtualRouterSpec& s, Value* o);
  void Encode(const RouteSpec& s, Value* o);
  void Encode(const VirtualNodeSpec& s, Value* o);
  void Encode(const VirtualGatewaySpec& s, Value* o);
  void Encode(const GatewayRouteSpec& s, Value* o);

 private:
  static Value Key(const char* k) { return Value(rapidjson::StringRef(k)); }
  Value Str(const std::string& s) {
    return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a_);
  }
  template <typename E>
  Value En(E e) {
    std::string_view n = internal::NameOf(e);
    return Value(rapidjson::StringRef(n.data(), n.size()));
  }
  void Add(Value* o, const char* k, Value v) { o->AddMember(Key(k), v, a_); }
  void Add(Value* o, const char* k, const std::string& s) { Add(o, k, Str(s)); }
  void AddInt(Value* o, const char* k, int64_t x) {
    Add(o, k, Value(static_cast<int64_t>(x)));
  }
  template <typename T, typename F>
  void AddOpt(Value* o, const char* k, const std::optional<T>& v, F f) {
    if (v) Add(o, k, f(*v));
  }
  void AddOptStr(Value* o, const char* k, const std::optional<std::string>& v) {
    if (v) Add(o, k, Str(*v));
  }
  void AddOptInt(Value* o, const char* k, const std::optional<int32_t>& v) {
    if (v) AddInt(o, k, *v);
  }
  template <typename E>
  void AddOptEnum(Value* o, const char* k, const std::optional<E>& v) {
    if (v) Add(o, k, En(*v));
  }
  // Lists of 0 items are omitted: the decoder reads a missing list as empty.
  template <typename T, typename F>
  void AddList(Value* o, const char* k, const std::vector<T>& items, F f) {
    if (items.empty()) return;
    Value arr(rapidjson::kArrayType);
    arr.Reserve(static_cast<rapidjson::SizeType>(items.size()), a_);
    for (const T& item : items) arr.PushBack(f(item), a_);
    Add(o, k, std::move(arr));
  }
  static Value Obj() { return Value(rapidjson::kObjectType); }

  Value Dur(const Duration& d) {
    Value o = Obj();
    AddInt(&o, "value", d.value);
    Add(&o, "unit", En(d.unit));
    return o;
  }
  Value PortMap(const PortMapping& m) {
    Value o = Obj();
    AddInt(&o, "port", m.port);
    Add(&o, "protocol", En(m.protocol));
    return o;
  }
  Value Timeout(const HttpTimeout& t) {
    Value o = Obj();
    AddOpt(&o, "perRequest", t.per_request, [&](auto& d) { return Dur(d); });
    AddOpt(&o, "idle", t.idle, [&](auto& d) { return Dur(d); });
    return o;
  }
  Value Timeout(const TcpTimeout& t) {
    Value o = Obj();
    AddOpt(&o, "idle", t.idle, [&](auto& d) { return Dur(d); });
    return o;
  }
  Value Header(const HeaderMatch& h) {
    Value o = Obj();
    Add(&o, "name", h.name);
    if (h.invert) Add(&o, "invert", Value(*h.invert));
    if (h.match) {
      const HeaderMatchMethod& m = *h.match;
      Value mo = Obj();
      AddOptStr(&mo, "exact", m.exact);
      AddOptStr(&mo, "prefix", m.prefix);
      AddOptStr(&mo, "suffix", m.suffix);
      AddOptStr(&mo, "regex", m.regex);
      if (m.range) {
        Value r = Obj();
        AddInt(&r, "start", m.range->start);
        AddInt(&r, "end", m.range->end);
        Add(&mo, "range", std::move(r));
      }
      Add(&o, "match", std::move(mo));
    }
    return o;
  }
  Value Path(const HttpPathMatch& p) {
    Value o = Obj();
    AddOptStr(&o, "exact", p.exact);
    AddOptStr(&o, "regex", p.regex);
    return o;
  }
  Value Query(const HttpQueryParameter& q) {
    Value o = Obj();
    Add(&o, "name", q.name);
    if (q.match) {
      Value m = Obj();
      AddOptStr(&m, "exact", q.match->exact);
      Add(&o, "match", std::move(m));
    }
    return o;
  }
  Value Certificate(const TlsCertificate& c) {
    Value o = Obj();
    if (c.acm) {
      Value a = Obj();
      Add(&a, "certificateArn", c.acm->certificate_arn);
      Add(&o, "acm", std::move(a));
    }
    if (c.file) {
      Value f = Obj();
      Add(&f, "certificateChain", c.file->certificate_chain);
      Add(&f, "privateKey", c.file->private_key);
      Add(&o, "file", std::move(f));
    }
    if (c.sds) {
      Value s = Obj();
      Add(&s, "secretName", c.sds->secret_name);
      Add(&o, "sds", std::move(s));
    }
    return o;
  }
  Value Validation(const TlsValidationContext& v) {
    Value o = Obj();
    Value t = Obj();
    if (v.trust.acm) {
      Value a = Obj();
      Value arns(rapidjson::kArrayType);
      for (const auto& arn : v.trust.acm->certificate_authority_arns) {
        arns.PushBack(Str(arn), a_);
      }
      Add(&a, "certificateAuthorityArns", std::move(arns));
      Add(&t, "acm", std::move(a));
    }
    if (v.trust.file) {
      Value f = Obj();
      Add(&f, "certificateChain", v.trust.file->certificate_chain);
      Add(&t, "file", std::move(f));
    }
    if (v.trust.sds) {
      Value s = Obj();
      Add(&s, "secretName", v.trust.sds->secret_name);
      Add(&t, "sds", std::move(s));
    }
    Add(&o, "trust", std::move(t));
    if (v.subject_alternative_names) {
      Value exact(rapidjson::kArrayType);
      for (const auto& san : v.subject_alternative_names->match_exact) {
        exact.PushBack(Str(san), a_);
      }
      Value match = Obj();
      Add(&match, "exact", std::move(exact));
      Value sans = Obj();
      Add(&sans, "match", std::move(match));
      Add(&o, "subjectAlternativeNames", std::move(sans));
    }
    return o;
  }
  Value Tls(const ListenerTls& t) {
    Value o = Obj();
    Add(&o, "mode", En(t.mode));
    Add(&o, "certificate", Certificate(t.certificate));
    AddOpt(&o, "validation", t.validation,
           [&](auto& v) { return Validation(v); });
    return o;
  }
  Value Client(const ClientPolicy& c) {
    Value o = Obj();
    if (c.tls) {
      const ClientPolicyTls& t = *c.tls;
      Value to = Obj();
      if (t.enforce) Add(&to, "enforce", Value(*t.enforce));
      AddList(&to, "ports", t.ports, [](int32_t p) { return Value(p); });
      AddOpt(&to, "certificate", t.certificate,
             [&](auto& x) { return Certificate(x); });
      Add(&to, "validation", Validation(t.validation));
      Add(&o, "tls", std::move(to));
    }
    return o;
  }
  Value Defaults(const BackendDefaults& b) {
    Value o = Obj();
    AddOpt(&o, "clientPolicy", b.client_policy,
           [&](auto& c) { return Client(c); });
    return o;
  }
  Value Health(const HealthCheckPolicy& h) {
    Value o = Obj();
    AddInt(&o, "healthyThreshold", h.healthy_threshold);
    AddInt(&o, "intervalMillis", h.interval_millis);
    AddOptStr(&o, "path", h.path);
    AddOptInt(&o, "port", h.port);
    Add(&o, "protocol", En(h.protocol));
    AddInt(&o, "timeoutMillis", h.timeout_millis);
    AddInt(&o, "unhealthyThreshold", h.unhealthy_threshold);
    return o;
  }
  Value Pool(const ConnectionPool& c) {
    Value o = Obj();
    if (c.tcp) {
      Value t = Obj();
      AddInt(&t, "maxConnections", c.tcp->max_connections);
      Add(&o, "tcp", std::move(t));
    }
    if (c.http) {
      Value h = Obj();
      AddInt(&h, "maxConnections", c.http->max_connections);
      AddOptInt(&h, "maxPendingRequests", c.http->max_pending_requests);
      Add(&o, "http", std::move(h));
    }
    auto requests = [&](const RequestConnectionPool& r) {
      Value x = Obj();
      AddInt(&x, "maxRequests", r.max_requests);
      return x;
    };
    AddOpt(&o, "http2", c.http2, requests);
    AddOpt(&o, "grpc", c.grpc, requests);
    return o;
  }
  Value Log(const Logging& l) {
    Value o = Obj();
    if (l.access_log) {
      Value a = Obj();
      if (l.access_log->file) {
        const FileAccessLog& f = *l.access_log->file;
        Value fo = Obj();
        Add(&fo, "path", f.path);
        if (f.format) {
          Value fmt = Obj();
          if (f.format->json) {
            Value arr(rapidjson::kArrayType);
            for (const JsonFormatRef& j : *f.format->json) {
              Value e = Obj();
              Add(&e, "key", j.key);
              Add(&e, "value", j.value);
              arr.PushBack(e, a_);
            }
            Add(&fmt, "json", std::move(arr));
          }
          AddOptStr(&fmt, "text", f.format->text);
          Add(&fo, "format", std::move(fmt));
        }
        Add(&a, "file", std::move(fo));
      }
      Add(&o, "accessLog", std::move(a));
    }
    return o;
  }
  Value Action(const RouteAction& a) {
    Value o = Obj();
    Value arr(rapidjson::kArrayType);
    for (const WeightedTarget& t : a.weighted_targets) {
      Value e = Obj();
      Add(&e, "virtualNode", t.virtual_node);
      AddInt(&e, "weight", t.weight);
      AddOptInt(&e, "port", t.port);
      arr.PushBack(e, a_);
    }
    Add(&o, "weightedTargets", std::move(arr));
    return o;
  }
  Value Retry(const RetryPolicy& r) {
    Value o = Obj();
    AddInt(&o, "maxRetries", r.max_retries);
    Add(&o, "perRetryTimeout", Dur(r.per_retry_timeout));
    AddList(&o, "httpRetryEvents", r.http_retry_events,
            [&](const std::string& e) { return Str(e); });
    AddList(&o, "tcpRetryEvents", r.tcp_retry_events,
            [&](TcpRetryEvent e) { return En(e); });
    AddList(&o, "grpcRetryEvents", r.grpc_retry_events,
            [&](GrpcRetryEvent e) { return En(e); });
    return o;
  }
  Value Route(const HttpRoute& r) {
    Value o = Obj();
    Value m = Obj();
    AddOptStr(&m, "prefix", r.match.prefix);
    AddOpt(&m, "path", r.match.path, [&](auto& p) { return Path(p); });
    AddOptEnum(&m, "method", r.match.method);
    AddOptEnum(&m, "scheme", r.match.scheme);
    AddList(&m, "headers", r.match.headers,
            [&](const HeaderMatch& h) { return Header(h); });
    AddList(&m, "queryParameters", r.match.query_parameters,
            [&](const HttpQueryParameter& q) { return Query(q); });
    AddOptInt(&m, "port", r.match.port);
    Add(&o, "match", std::move(m));
    Add(&o, "action", Action(r.action));
    AddOpt(&o, "retryPolicy", r.retry_policy,
           [&](auto& x) { return Retry(x); });
    AddOpt(&o, "timeout", r.timeout, [&](auto& t) { return Timeout(t); });
    return o;
  }
  Value Route(const GrpcRoute& r) {
    Value o = Obj();
    Value m = Obj();
    AddOptStr(&m, "serviceName", r.match.service_name);
    AddOptStr(&m, "methodName", r.match.method_name);
    AddList(&m, "metadata", r.match.metadata,
            [&](const HeaderMatch& h) { return Header(h); });
    AddOptInt(&m, "port", r.match.port);
    Add(&o, "match", std::move(m));
    Add(&o, "action", Action(r.action));
    AddOpt(&o, "retryPolicy", r.retry_policy,
           [&](auto& x) { return Retry(x); });
    AddOpt(&o, "timeout", r.timeout, [&](auto& t) { return Timeout(t); });
    return o;
  }
  Value Route(const TcpRoute& r) {
    Value o = Obj();
    if (r.match) {
      Value m = Obj();
      AddOptInt(&m, "port", r.match->port);
      Add(&o, "match", std::move(m));
    }
    Add(&o, "action", Action(r.action));
    AddOpt(&o, "timeout", r.timeout, [&](auto& t) { return Timeout(t); });
    return o;
  }
  Value HostMatch(const GatewayRouteHostnameMatch& h) {
    Value o = Obj();
    AddOptStr(&o, "exact", h.exact);
    AddOptStr(&o, "suffix", h.suffix);
    return o;
  }
  Value Target(const GatewayRouteTarget& t) {
    Value o = Obj();
    Value vs = Obj();
    Add(&vs, "virtualServiceName", t.virtual_service_name);
    Add(&o, "virtualService", std::move(vs));
    AddOptInt(&o, "port", t.port);
    return o;
  }
  Value HostRewrite(const GatewayRouteHostnameRewrite& h) {
    Value o = Obj();
    AddOptEnum(&o, "defaultTargetHostname", h.default_target_hostname);
    return o;
  }
  Value GatewayRoute(const HttpGatewayRoute& r) {
    Value o = Obj();
    Value m = Obj();
    AddOptStr(&m, "prefix", r.match.prefix);
    AddOpt(&m, "path", r.match.path, [&](auto& p) { return Path(p); });
    AddOpt(&m, "hostname", r.match.hostname,
           [&](auto& h) { return HostMatch(h); });
    AddOptEnum(&m, "method", r.match.method);
    AddList(&m, "headers", r.match.headers,
            [&](const HeaderMatch& h) { return Header(h); });
    AddList(&m, "queryParameters", r.match.query_parameters,
            [&](const HttpQueryParameter& q) { return Query(q); });
    AddOptInt(&m, "port", r.match.port);
    Add(&o, "match", std::move(m));
    Value a = Obj();
    Add(&a, "target", Target(r.action.target));
    if (r.action.rewrite) {
      const HttpGatewayRouteRewrite& w = *r.action.rewrite;
      Value wo = Obj();
      AddOpt(&wo, "hostname", w.hostname,
             [&](auto& h) { return HostRewrite(h); });
      if (w.path) {
        Value p = Obj();
        AddOptStr(&p, "exact", w.path->exact);
        Add(&wo, "path", std::move(p));
      }
      if (w.prefix) {
        Value p = Obj();
        AddOptEnum(&p, "defaultPrefix", w.prefix->default_prefix);
        AddOptStr(&p, "value", w.prefix->value);
        Add(&wo, "prefix", std::move(p));
      }
      Add(&a, "rewrite", std::move(wo));
    }
    Add(&o, "action", std::move(a));
    return o;
  }
  Value GatewayRoute(const GrpcGatewayRoute& r) {
    Value o = Obj();
    Value m = Obj();
    AddOptStr(&m, "serviceName", r.match.service_name);
    AddOpt(&m, "hostname", r.match.hostname,
           [&](auto& h) { return HostMatch(h); });
    AddList(&m, "metadata", r.match.metadata,
            [&](const HeaderMatch& h) { return Header(h); });
    AddOptInt(&m, "port", r.match.port);
    Add(&o, "match", std::move(m));
    Value a = Obj();
    Add(&a, "target", Target(r.action.target));
    if (r.action.rewrite) {
      Value wo = Obj();
      AddOpt(&wo, "hostname", r.action.rewrite->hostname,
             [&](auto& h) { return HostRewrite(h); });
      Add(&a, "rewrite", std::move(wo));
    }
    Add(&o, "action", std::move(a));
    return o;
  }

  Alloc& a_;
};

void Encoder::Encode(const MeshSpec& s, Value* o) {
  if (s.egress_filter) {
    Value e = Obj();
    Add(&e, "type", En(s.egress_filter->type));
    Add(o, "egressFilter", std::move(e));
  }
  if (s.service_discovery) {
    Value d = Obj();
    AddOptEnum(&d, "ipPreference", s.service_discovery->ip_preference);
    Add(o, "serviceDiscovery", std::move(d));
  }
}

void Encoder::Encode(const VirtualServiceSpec& s, Value* o) {
  if (!s.provider) return;
  Value p = Obj();
  if (s.provider->virtual_node) {
    Value n = Obj();
    Add(&n, "virtualNodeName", s.provider->virtual_node->virtual_node_name);
    Add(&p, "virtualNode", std::move(n));
  }
  if (s.provider->virtual_router) {
    Value r = Obj();
    Add(&r, "virtualRouterName",
        s.provider->virtual_router->virtual_router_name);
    Add(&p, "virtualRouter", std::move(r));
  }
  Add(o, "provider", std::move(p));
}

void Encoder::Encode(const VirtualRouterSpec& s, Value* o) {
  AddList(o, "listeners", s.listeners, [&](const VirtualRouterListener& l) {
    Value lo = Obj();
    Add(&lo, "portMapping", PortMap(l.port_mapping));
    return lo;
  });
}

void Encoder::Encode(const RouteSpec& s, Value* o) {
  AddOptInt(o, "priority", s.priority);
  AddOpt(o, "httpRoute", s.http_route, [&](auto& r) { return Route(r); });
  AddOpt(o, "http2Route", s.http2_route, [&](auto& r) { return Route(r); });
  AddOpt(o, "grpcRoute", s.grpc_route, [&](auto& r) { return Route(r); });
  AddOpt(o, "tcpRoute", s.tcp_route, [&](auto& r) { return Route(r); });
}

void Encoder::Encode(const VirtualNodeSpec& s, Value* o) {
  AddOpt(o, "backendDefaults", s.backend_defaults,
         [&](auto& b) { return Defaults(b); });
  AddList(o, "backends", s.backends, [&](const Backend& b) {
    Value bo = Obj();
    if (b.virtual_service) {
      Value vs = Obj();
      Add(&vs, "virtualServiceName", b.virtual_service->virtual_service_name);
      AddOpt(&vs, "clientPolicy", b.virtual_service->client_policy,
             [&](auto& c) { return Client(c); });
      Add(&bo, "virtualService", std::move(vs));
    }
    return bo;
  });
  AddList(o, "listeners", s.listeners, [&](const Listener& l) {
    Value lo = Obj();
    Add(&lo, "portMapping", PortMap(l.port_mapping));
    AddOpt(&lo, "connectionPool", l.connection_pool,
           [&](auto& c) { return Pool(c); });
    AddOpt(&lo, "healthCheck", l.health_check,
           [&](auto& h) { return Health(h); });
    if (l.outlier_detection) {
      const OutlierDetection& d = *l.outlier_detection;
      Value od = Obj();
      Add(&od, "baseEjectionDuration", Dur(d.base_ejection_duration));
      Add(&od, "interval", Dur(d.interval));
      AddInt(&od, "maxEjectionPercent", d.max_ejection_percent);
      AddInt(&od, "maxServerErrors", d.max_server_errors);
      Add(&lo, "outlierDetection", std::move(od));
    }
    if (l.timeout) {
      Value t = Obj();
      auto tm = [&](auto& x) { return Timeout(x); };
      AddOpt(&t, "grpc", l.timeout->grpc, tm);
      AddOpt(&t, "http", l.timeout->http, tm);
      AddOpt(&t, "http2", l.timeout->http2, tm);
      AddOpt(&t, "tcp", l.timeout->tcp, tm);
      Add(&lo, "timeout", std::move(t));
    }
    AddOpt(&lo, "tls", l.tls, [&](auto& t) { return Tls(t); });
    return lo;
  });
  AddOpt(o, "logging", s.logging, [&](auto& l) { return Log(l); });
  if (s.service_discovery) {
    Value sd = Obj();
    if (s.service_discovery->dns) {
      const DnsServiceDiscovery& d = *s.service_discovery->dns;
      Value dn = Obj();
      Add(&dn, "hostname", d.hostname);
      AddOptEnum(&dn, "responseType", d.response_type);
      AddOptEnum(&dn, "ipPreference", d.ip_preference);
      Add(&sd, "dns", std::move(dn));
    }
    if (s.service_discovery->aws_cloud_map) {
      const AwsCloudMapServiceDiscovery& c =
          *s.service_discovery->aws_cloud_map;
      Value cm = Obj();
      Add(&cm, "namespaceName", c.namespace_name);
      Add(&cm, "serviceName", c.service_name);
      AddList(&cm, "attributes", c.attributes,
              [&](const AwsCloudMapInstanceAttribute& a) {
                Value ao = Obj();
                Add(&ao, "key", a.key);
                Add(&ao, "value", a.value);
                return ao;
              });
      AddOptEnum(&cm, "ipPreference", c.ip_preference);
      Add(&sd, "awsCloudMap", std::move(cm));
    }
    Add(o, "serviceDiscovery", std::move(sd));
  }
}

void Encoder::Encode(const VirtualGatewaySpec& s, Value* o) {
  AddOpt(o, "backendDefaults", s.backend_defaults,
         [&](auto& b) { return Defaults(b); });
  // Required by the API, so written even when empty.
  Value arr(rapidjson::kArrayType);
  for (const VirtualGatewayListener& l : s.listeners) {
    Value lo = Obj();
    Add(&lo, "portMapping", PortMap(l.port_mapping));
    AddOpt(&lo, "connectionPool", l.connection_pool,
           [&](auto& c) { return Pool(c); });
    AddOpt(&lo, "healthCheck", l.health_check,
           [&](auto& h) { return Health(h); });
    AddOpt(&lo, "tls", l.tls, [&](auto& t) { return Tls(t); });
    arr.PushBack(lo, a_);
  }
  Add(o, "listeners", std::move(arr));
  AddOpt(o, "logging", s.logging, [&](auto& l) { return Log(l); });
}

void Encoder::Encode(const GatewayRouteSpec& s, Value* o) {
  AddOptInt(o, "priority", s.priority);
  AddOpt(o, "httpRoute", s.http_route,
         [&](auto& r) { return GatewayRoute(r); });
  AddOpt(o, "http2Route", s.http2_route,
         [&](auto& r) { return GatewayRoute(r); });
  AddOpt(o, "grpcRoute", s.grpc_route,
         [&](auto& r) { return GatewayRoute(r); });
}

}  // namespace

void EncodeSpec(const AnySpec& spec, rapidjson::Value* out,
                rapidjson::Document::AllocatorType& alloc) {
  out->SetObject();
  Encoder e(alloc);
  std::visit([&](const auto& s) { e.Encode(s, out); }, spec);
}

std::string EncodeSpecToString(const AnySpec& spec) {
  rapidjson::Document doc;
  EncodeSpec(spec, &doc, doc.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace nodemesh::model

#include "agent/proxy/endpoint_resolver.h"

#include <netdb.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace nodemesh::proxy {

std::string DnsQuery::Key() const {
  return absl::StrCat(hostname, "|", port, "|", all_addresses ? 1 : 0, "|",
                      static_cast<int>(ip_preference));
}

absl::StatusOr<EndpointList> ResolveDns(const DnsQuery& q, bool literal_only) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (literal_only ? AI_NUMERICHOST : 0);
  using P = model::IpPreference;
  if (q.ip_preference == P::kIPv4Only) hints.ai_family = AF_INET;
  if (q.ip_preference == P::kIPv6Only) hints.ai_family = AF_INET6;
  addrinfo* res = nullptr;
  std::string port = std::to_string(q.port);
  int rc = ::getaddrinfo(q.hostname.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("dns service discovery: cannot resolve ", q.hostname, ": ",
                     ::gai_strerror(rc)));
  }
  EndpointList v4, v6;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    auto a = net::SocketAddress::FromSockaddr(ai->ai_addr, ai->ai_addrlen);
    if (!a.ok()) continue;
    EndpointList& list = a->family() == AF_INET6 ? v6 : v4;
    if (std::find(list.begin(), list.end(), *a) == list.end())
      list.push_back(*a);
  }
  ::freeaddrinfo(res);
  bool v6_first =
      q.ip_preference == P::kIPv6Preferred || q.ip_preference == P::kIPv6Only;
  EndpointList out = v6_first ? v6 : v4;
  const EndpointList& rest = v6_first ? v4 : v6;
  out.insert(out.end(), rest.begin(), rest.end());
  if (out.empty())
    return absl::UnavailableError(
        absl::StrCat("dns service discovery: no address for ", q.hostname));
  if (!q.all_addresses) out.resize(1);  // LOADBALANCER: one name, one address
  return out;
}

struct EndpointResolver::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<DnsQuery> queries;  // guarded by mu
  bool changed = false;           // guarded by mu
  bool stop = false;              // guarded by mu
  bool alive = true;              // main thread only: closures check it
};

EndpointResolver::EndpointResolver(net::EventLoop* main_loop,
                                   std::function<void()> on_change,
                                   std::chrono::milliseconds refresh)
    : main_loop_(main_loop),
      on_change_(std::move(on_change)),
      refresh_(refresh),
      shared_(std::make_shared<Shared>()) {
  thread_ = std::thread([this] { Loop(); });
}

EndpointResolver::~EndpointResolver() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.notify_all();
  thread_.join();
  shared_->alive = false;
}

void EndpointResolver::SetQueries(const std::vector<DnsQuery>& queries) {
  std::map<std::string, std::shared_ptr<const EndpointList>> kept;
  for (const DnsQuery& q : queries) {
    std::string key = q.Key();
    if (auto it = answers_.find(key); it != answers_.end()) {
      kept[key] = it->second;
      continue;
    }
    // An address literal needs no lookup: answer now, so a first config
    // serves without waiting for the resolver thread. The literal is taken
    // as written, whatever the IP preference.
    DnsQuery literal = q;
    literal.ip_preference = model::IpPreference::kIPv4Preferred;
    auto answer = ResolveDns(literal, /*literal_only=*/true);
    if (answer.ok())
      kept[key] = std::make_shared<const EndpointList>(std::move(*answer));
  }
  answers_ = std::move(kept);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->queries = queries;
    shared_->changed = true;
  }
  shared_->cv.notify_all();
}

std::shared_ptr<const EndpointList> EndpointResolver::Lookup(
    const DnsQuery& q) const {
  auto it = answers_.find(q.Key());
  return it == answers_.end() ? nullptr : it->second;
}

void EndpointResolver::Loop() {
  std::shared_ptr<Shared> shared = shared_;
  while (true) {
    std::vector<DnsQuery> queries;
    {
      std::unique_lock<std::mutex> lock(shared->mu);
      shared->cv.wait_for(lock, refresh_,
                          [&] { return shared->stop || shared->changed; });
      if (shared->stop) return;
      shared->changed = false;
      queries = shared->queries;
    }
    auto results = std::make_shared<
        std::vector<std::pair<std::string, absl::StatusOr<EndpointList>>>>();
    for (const DnsQuery& q : queries)
      results->emplace_back(q.Key(), ResolveDns(q));
    main_loop_->Post([this, shared, results] {
      if (!shared->alive) return;
      bool changed = false;
      for (auto& [key, answer] : *results) {
        if (!answer.ok()) {
          ++failures_;
          LOG_EVERY_N(WARNING, 20) << answer.status().message();
          continue;  // the last good answer stays
        }
        auto& slot = answers_[key];
        if (slot == nullptr || *slot != *answer) {
          slot = std::make_shared<const EndpointList>(std::move(*answer));
          changed = true;
        }
      }
      if (changed) on_change_();
    });
  }
}

}  // namespace nodemesh::proxy

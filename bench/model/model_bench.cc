// The mesh model at scale: 10,000 virtual services, 10,000 virtual nodes and
// 1,000 routers with 10 routes each, as JSON files in a config dir. Times
// parse + validate + compile of the whole model and its peak memory, then
// one changed route applied incrementally.
//
//   build/bench/model_bench [--services=10000] [--routers=1000]

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/model/snapshot.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

long PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

std::string Node(int i) {
  return "{\"meshName\":\"bench\",\"virtualNodeName\":\"vn-" +
         std::to_string(i) +
         "\",\"spec\":{\"listeners\":[{\"portMapping\":{\"port\":8080,"
         "\"protocol\":\"http\"},\"healthCheck\":{\"protocol\":\"http\","
         "\"path\":\"/ping\",\"healthyThreshold\":2,\"unhealthyThreshold\":2,"
         "\"timeoutMillis\":2000,\"intervalMillis\":5000}}],"
         "\"serviceDiscovery\":{\"dns\":{\"hostname\":\"vn-" +
         std::to_string(i) +
         ".bench.local\"}},\"backends\":[{\"virtualService\":{"
         "\"virtualServiceName\":\"vs-" +
         std::to_string((i + 1) % 10000) + ".bench.local\"}}]}}";
}

std::string Service(int i, int routers) {
  std::string provider =
      i < routers ? "{\"virtualRouter\":{\"virtualRouterName\":\"vr-" +
                        std::to_string(i) + "\"}}"
                  : "{\"virtualNode\":{\"virtualNodeName\":\"vn-" +
                        std::to_string(i) + "\"}}";
  return "{\"meshName\":\"bench\",\"virtualServiceName\":\"vs-" +
         std::to_string(i) +
         ".bench.local\",\"spec\":{\"provider\":" + provider + "}}";
}

std::string Route(int router, int r, int weight) {
  std::string targets;
  for (int t = 0; t < 2; ++t) {
    if (t) targets += ",";
    targets += "{\"virtualNode\":\"vn-" +
               std::to_string((router * 10 + r + t) % 10000) +
               "\",\"weight\":" + std::to_string(t ? 100 - weight : weight) +
               "}";
  }
  return "{\"meshName\":\"bench\",\"virtualRouterName\":\"vr-" +
         std::to_string(router) + "\",\"routeName\":\"r-" + std::to_string(r) +
         "\",\"spec\":{\"priority\":" + std::to_string(r) +
         ",\"httpRoute\":{\"match\":{\"prefix\":\"/p" + std::to_string(r) +
         "\",\"headers\":[{\"name\":\"x-canary\",\"match\":{\"exact\":\"" +
         std::to_string(r) + "\"}}]},\"action\":{\"weightedTargets\":[" +
         targets +
         "]},\"retryPolicy\":{\"maxRetries\":2,\"perRetryTimeout\":{\"unit\":"
         "\"ms\",\"value\":500},\"httpRetryEvents\":[\"server-error\"]},"
         "\"timeout\":{\"perRequest\":{\"unit\":\"s\",\"value\":5}}}}}";
}

std::string RouterFile(int router, int weight_of_first) {
  std::string out =
      "[{\"meshName\":\"bench\",\"virtualRouterName\":\"vr-" +
      std::to_string(router) +
      "\",\"spec\":{\"listeners\":[{\"portMapping\":{\"port\":8080,"
      "\"protocol\":\"http\"}}]}}";
  for (int r = 0; r < 10; ++r)
    out += "," + Route(router, r, r == 0 ? weight_of_first : 50);
  return out + "]";
}

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

}  // namespace

int main(int argc, char** argv) {
  int services = 10000, routers = 1000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--services=", 0) == 0) services = std::stoi(a.substr(11));
    if (a.rfind("--routers=", 0) == 0) routers = std::stoi(a.substr(10));
  }
  std::string tmpl = "/tmp/nm-model-bench-XXXXXX";
  fs::path dir = ::mkdtemp(tmpl.data());
  size_t bytes = 0;
  auto emit = [&](const fs::path& p, const std::string& text) {
    bytes += text.size();
    Write(p, text);
  };
  emit(dir / "mesh.json", "{\"meshName\":\"bench\",\"spec\":{}}");
  for (int f = 0; f < services / 100; ++f) {
    std::string nodes = "[", svcs = "[";
    for (int i = f * 100; i < (f + 1) * 100; ++i) {
      nodes += (i % 100 ? "," : "") + Node(i);
      svcs += (i % 100 ? "," : "") + Service(i, routers);
    }
    emit(dir / "vn" / ("vn-" + std::to_string(f) + ".json"), nodes + "]");
    emit(dir / "vs" / ("vs-" + std::to_string(f) + ".json"), svcs + "]");
  }
  for (int r = 0; r < routers; ++r)
    emit(dir / "vr" / ("vr-" + std::to_string(r) + ".json"), RouterFile(r, 50));

  long rss_before = PeakRssMb();
  nodemesh::model::SnapshotBuilder builder(dir.string());
  auto t0 = Clock::now();
  auto first = builder.Build(nullptr);
  auto t1 = Clock::now();
  if (!first.snapshot) {
    for (const auto& d : first.diagnostics.items())
      if (d.severity == nodemesh::model::Diagnostic::Severity::kError) {
        fprintf(stderr, "%s\n", d.ToString().c_str());
        break;
      }
    return 1;
  }
  long rss_after = PeakRssMb();

  // One route's weights change; the file holding its router is rewritten.
  Write(dir / "vr" / "vr-7.json", RouterFile(7, 90));
  auto t2 = Clock::now();
  auto second = builder.Build(first.snapshot.get());
  auto t3 = Clock::now();

  printf("model: %zu resources, %.1f MB of JSON in %zu files\n",
         first.snapshot->resources.size(), bytes / 1e6, first.snapshot->files);
  printf("  whole model: parse + validate + compile  %8.1f ms  (goal < 1000)\n",
         Ms(t1 - t0));
  printf(
      "  peak memory (RSS)                         %8ld MB  (goal < 300; "
      "%ld MB before loading)\n",
      rss_after, rss_before);
  printf(
      "  one changed route, incremental            %8.1f ms  (goal < 20; "
      "%zu file read, %zu resources decoded)\n",
      Ms(t3 - t2), second.stats.files_read, second.stats.resources_decoded);
  const auto& st = second.stats;
  printf(
      "    (files %.1f ms, assemble %.1f ms, validate %.1f ms, publish %.1f "
      "ms)\n",
      st.files_us / 1e3, st.assemble_us / 1e3, st.validate_us / 1e3,
      st.publish_us / 1e3);
  fs::remove_all(dir);
  return second.snapshot ? 0 : 1;
}

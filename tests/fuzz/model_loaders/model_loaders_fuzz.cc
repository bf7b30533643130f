// libFuzzer target over the config loaders: the bytes of one file read as
// API-shape JSON, as API-shape YAML, and as Kubernetes manifests (added to an
// object set and resolved). Whatever the input, the loaders report
// diagnostics and never crash, hang or leak.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/model/api_json_loader.h"
#include "agent/model/k8s_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nodemesh::model;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool yaml : {false, true}) {
    std::vector<ApiShapeResource> out;
    Diagnostics diags;
    ParseApiShapeText(text, yaml, {"fuzz"}, {}, &out, &diags);
  }
  if (LooksLikeKubernetes(text)) {
    K8sObjectSet set;
    Diagnostics diags;
    set.AddFile("fuzz.yaml", text, &diags);
    set.AddFile("again.yaml", text, &diags);  // a redefinition, too
    (void)set.Resolve(&diags);
  }
  return 0;
}

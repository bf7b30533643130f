# Kubernetes App Mesh manifests (appmesh.k8s.aws/v1beta2) -> API-shape JSON.
target_sources(nodemesh_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/k8s_manifest.cc
  ${CMAKE_CURRENT_LIST_DIR}/k8s_membership.cc
  ${CMAKE_CURRENT_LIST_DIR}/k8s_refs.cc)

# Kubernetes App Mesh manifests (appmesh.k8s.aws/v1beta2) -> API-shape JSON.
if(NOT TARGET yaml-cpp)
  find_package(yaml-cpp REQUIRED)
endif()
target_sources(nodemesh_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/k8s_manifest.cc
  ${CMAKE_CURRENT_LIST_DIR}/k8s_membership.cc
  ${CMAKE_CURRENT_LIST_DIR}/k8s_refs.cc)
target_link_libraries(nodemesh_model PUBLIC yaml-cpp)

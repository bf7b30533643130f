# The App Mesh control-plane API on the admin server: routing, restJson
# shapes, SigV4 verification. The ResourceStore behind it lives elsewhere.
find_package(OpenSSL REQUIRED)
add_library(nodemesh_api
  ${CMAKE_CURRENT_LIST_DIR}/api_json.cc
  ${CMAKE_CURRENT_LIST_DIR}/appmesh_api.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_dir_store.cc
  ${CMAKE_CURRENT_LIST_DIR}/resource_store.cc
  ${CMAKE_CURRENT_LIST_DIR}/sigv4.cc)
target_link_libraries(nodemesh_api
  PUBLIC nodemesh_admin nodemesh_model absl::status absl::statusor
  PRIVATE OpenSSL::Crypto glog::glog)

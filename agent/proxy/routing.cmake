# Request matching (App Mesh route matches, compiled once per snapshot),
# the balancers that pick a weighted target and an endpoint, and the
# endpoint health (outlier detection, health check thresholds) they skip by.
add_library(nodemesh_routing
  ${CMAKE_CURRENT_LIST_DIR}/outlier_detector.cc
  ${CMAKE_CURRENT_LIST_DIR}/route_match.cc
  ${CMAKE_CURRENT_LIST_DIR}/path_rewrite.cc
  ${CMAKE_CURRENT_LIST_DIR}/load_balancer.cc)
target_link_libraries(nodemesh_routing
  PUBLIC nodemesh_http nodemesh_model absl::status absl::statusor
         absl::strings absl::function_ref PkgConfig::RE2)

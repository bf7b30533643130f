# Access log formats: Envoy command operators compiled once per config
# (the compile step builds them; sessions evaluate them).
add_library(nodemesh_access_log ${CMAKE_CURRENT_LIST_DIR}/access_log.cc)
target_link_libraries(nodemesh_access_log PUBLIC nodemesh_http absl::strings)

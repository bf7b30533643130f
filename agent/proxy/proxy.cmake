# Workers, connections and listeners: the proxy itself.
add_library(nodemesh_proxy
  ${CMAKE_CURRENT_LIST_DIR}/access_log_files.cc
  ${CMAKE_CURRENT_LIST_DIR}/endpoint_resolver.cc
  ${CMAKE_CURRENT_LIST_DIR}/h2_downstream.cc
  ${CMAKE_CURRENT_LIST_DIR}/h2_upstream.cc
  ${CMAKE_CURRENT_LIST_DIR}/hbone_connection.cc
  ${CMAKE_CURRENT_LIST_DIR}/health_checker.cc
  ${CMAKE_CURRENT_LIST_DIR}/http_access_log.cc
  ${CMAKE_CURRENT_LIST_DIR}/http_session.cc
  ${CMAKE_CURRENT_LIST_DIR}/local_reply.cc
  ${CMAKE_CURRENT_LIST_DIR}/proxy.cc
  ${CMAKE_CURRENT_LIST_DIR}/proxy_stats.cc
  ${CMAKE_CURRENT_LIST_DIR}/tcp_session.cc
  ${CMAKE_CURRENT_LIST_DIR}/tls_downstream.cc
  ${CMAKE_CURRENT_LIST_DIR}/tunnel_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/upstream.cc
  ${CMAKE_CURRENT_LIST_DIR}/worker.cc)
target_link_libraries(nodemesh_proxy
  PUBLIC nodemesh_compile nodemesh_workload nodemesh_routing
         nodemesh_access_log nodemesh_http
         nodemesh_net nodemesh_stats nlohmann_json::nlohmann_json
         absl::flat_hash_map absl::inlined_vector glog::glog Threads::Threads)
target_include_directories(nodemesh_proxy PUBLIC ${CMAKE_SOURCE_DIR}/include)

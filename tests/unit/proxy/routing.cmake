nodemesh_test(route_match_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/route_match_test.cc
  LIBS nodemesh_routing
  LABELS unit)
nodemesh_test(path_rewrite_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/path_rewrite_test.cc
  LIBS nodemesh_routing
  LABELS unit)
nodemesh_test(header_query_match_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/header_query_match_test.cc
  LIBS nodemesh_routing
  LABELS unit)
nodemesh_test(load_balancer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/load_balancer_test.cc
  LIBS nodemesh_routing
  LABELS unit)

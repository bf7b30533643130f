nodemesh_test(outlier_detector_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/outlier_detector_test.cc
  LIBS nodemesh_routing
  LABELS unit)

nodemesh_test(snapshot_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/snapshot_test.cc
              LIBS nodemesh_model LABELS unit)
nodemesh_test(config_dir_source_test
              SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_dir_source_test.cc
              LIBS nodemesh_model LABELS unit)
nodemesh_test(appmesh_examples_test
              SOURCES ${CMAKE_CURRENT_LIST_DIR}/appmesh_examples_test.cc
              LIBS nodemesh_model LABELS unit)
target_compile_definitions(appmesh_examples_test PRIVATE
  NODEMESH_EXAMPLES_DIR="${CMAKE_SOURCE_DIR}/../shared/appmesh-examples")
nodemesh_test(model_source_external_test
              SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_source_external_test.cc
              LIBS nodemesh_model LABELS unit)

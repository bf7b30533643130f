# Loading, cross-resource validation, snapshots and the config dir source.
target_sources(nodemesh_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/api_json_loader.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_dir_source.cc
  ${CMAKE_CURRENT_LIST_DIR}/config_dump.cc
  ${CMAKE_CURRENT_LIST_DIR}/mesh_state.cc
  ${CMAKE_CURRENT_LIST_DIR}/model_source.cc
  ${CMAKE_CURRENT_LIST_DIR}/snapshot.cc
  ${CMAKE_CURRENT_LIST_DIR}/yaml_reader.cc)
# libyaml (Debian's libyaml-dev) reads YAML: see yaml_reader.h for why not
# yaml-cpp.
pkg_check_modules(LIBYAML REQUIRED IMPORTED_TARGET yaml-0.1)
target_link_libraries(nodemesh_model PUBLIC nodemesh_net glog::glog
                      PkgConfig::LIBYAML)

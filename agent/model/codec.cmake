# Spec types, the App Mesh JSON codec and App Mesh's implicit defaults.
target_sources(nodemesh_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/types.cc
  ${CMAKE_CURRENT_LIST_DIR}/json_codec.cc
  ${CMAKE_CURRENT_LIST_DIR}/json_codec_encode.cc
  ${CMAKE_CURRENT_LIST_DIR}/defaults.cc)

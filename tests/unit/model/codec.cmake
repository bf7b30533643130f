# Spec codec and defaults. The example specs live outside the tree; the
# examples test skips itself when the folder is missing.
set(NODEMESH_CODEC_EXAMPLES_DIR "/work/shared/appmesh-examples" CACHE PATH
    "App Mesh example specs (INDEX.md + files) for json_codec_examples_test")
nodemesh_test(json_codec_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/json_codec_test.cc
  LIBS nodemesh_model LABELS unit)
nodemesh_test(json_codec_examples_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/json_codec_examples_test.cc
  LIBS nodemesh_model LABELS unit)
target_compile_definitions(json_codec_examples_test PRIVATE
  NODEMESH_CODEC_EXAMPLES_DIR="${NODEMESH_CODEC_EXAMPLES_DIR}")
nodemesh_test(defaults_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/defaults_test.cc
  LIBS nodemesh_model LABELS unit)

nodemesh_test(k8s_manifest_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/k8s_manifest_test.cc
  LIBS nodemesh_model LABELS unit)
# The real App Mesh manifests the example tests convert; they skip when the
# folder is absent.
set(NODEMESH_APPMESH_EXAMPLES_DIR /work/shared/appmesh-examples CACHE PATH
    "aws-app-mesh-examples specs (INDEX.md + files) for the model tests")
target_compile_definitions(k8s_manifest_test PRIVATE
  NODEMESH_APPMESH_EXAMPLES_DIR="${NODEMESH_APPMESH_EXAMPLES_DIR}")

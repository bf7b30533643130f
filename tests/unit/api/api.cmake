nodemesh_test(sigv4_test SOURCES sigv4_test.cc LIBS nodemesh_api LABELS unit)
nodemesh_test(appmesh_api_test SOURCES appmesh_api_test.cc
              LIBS nodemesh_api LABELS unit)
# Drives the real AWS CLI (/usr/bin/aws) against the API on 127.0.0.1.
nodemesh_test(appmesh_api_cli_test SOURCES appmesh_api_cli_test.cc
              LIBS nodemesh_api LABELS integration)

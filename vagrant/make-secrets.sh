#!/usr/bin/env bash
# Runs on the host before `vagrant up` (a trigger in the Vagrantfile):
# makes vagrant/secrets/ once, for the nodes named as arguments:
#   root.pem, root.key         the mesh's root CA (--ca_bundle); the key never
#                              leaves the host (the rsync excludes it)
#   NODE/intermediate.{pem,key}  each node's signing CA (--signing_cert/_key)
#   credentials                an AWS credentials file: the key the App Mesh
#                              API accepts (--api_credentials_file) and the
#                              CLI on the VMs signs with
# Later runs change nothing, so the VMs keep trusting each other. Needs bash
# and OpenSSL 1.1.1 or newer on the host.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secrets=$here/secrets

missing=()
for node in "$@"; do
  [ -f "$secrets/$node/intermediate.pem" ] || missing+=("$node")
done
if [ ${#missing[@]} -gt 0 ]; then
  # The same CA layout as the cluster tests and the one-machine demo.
  "$here/../tests/integration/cluster_certs.sh" mesh "$secrets" "${missing[@]}"
fi

if [ ! -f "$secrets/credentials" ]; then
  umask 077
  cat >"$secrets/credentials" <<EOF
[default]
aws_access_key_id = AKIA$(openssl rand -hex 8 | tr a-f A-F)
aws_secret_access_key = $(openssl rand -base64 30)
EOF
fi

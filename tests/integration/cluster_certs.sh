#!/usr/bin/env bash
# Certificates for clusters of test nodes (tests/integration/cluster_fixture.h
# and the cluster demo), made with the openssl CLI. All keys are ECDSA P-256
# in PKCS#8 PEM.
#
#   cluster_certs.sh mesh DIR NODE...
#       DIR/root.pem, DIR/root.key: the mesh's root CA (10 years), the
#       agents' --ca_bundle; DIR/NODE/intermediate.pem and .key: each node's
#       signing CA (CA:TRUE, pathlen:0, keyCertSign + cRLSign; 5 years),
#       signed by the root: --signing_cert / --signing_key.
#   cluster_certs.sh leaf DIR NODE SPIFFE_ID OUT
#       A valid leaf for SPIFFE_ID (URI SAN) signed by NODE's intermediate:
#       OUT.pem, OUT.key and OUT.chain.pem (leaf + intermediate).
#   cluster_certs.sh expired DIR NODE SPIFFE_ID OUT
#       The same, but its validity ended in 2021 (openssl ca -startdate
#       -enddate: OpenSSL 3.0's x509 cannot set a start date).
#   cluster_certs.sh untrusted DIR SPIFFE_ID OUT
#       A leaf for SPIFFE_ID under a second root the mesh does not trust:
#       OUT.pem, OUT.key, OUT.chain.pem, and that root as OUT-root.pem.
# Prints nothing on success; openssl's complaints go to stderr.
set -euo pipefail

die() { echo "cluster_certs.sh: $*" >&2; exit 2; }

newkey() { # FILE
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# An openssl ca setup in a scratch dir under DIR (removed on exit), so the
# CA database never outlives the call.
with_ca() { # DIR CA_CERT CA_KEY -> sets $ca_conf
  local dir=$1 cert=$2 key=$3
  ca_tmp=$(mktemp -d "$dir/.ca.XXXXXX")
  trap 'rm -rf "$ca_tmp"' EXIT
  : >"$ca_tmp/index.txt"
  openssl rand -hex 16 >"$ca_tmp/serial"
  ca_conf=$ca_tmp/ca.cnf
  cat >"$ca_conf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
dir = $ca_tmp
database = $ca_tmp/index.txt
new_certs_dir = $ca_tmp
serial = $ca_tmp/serial
certificate = $cert
private_key = $key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \${ENV::LEAF_SAN}
EOF
}

# Signs OUT.csr with the CA set up by with_ca; extra args go to openssl ca.
sign_leaf() { # SPIFFE_ID OUT ARGS...
  local id=$1 out=$2
  shift 2
  newkey "$out.key"
  openssl req -new -key "$out.key" -subj "/CN=${id##*/}" -out "$out.csr"
  LEAF_SAN="URI:$id" openssl ca -batch -notext -config "$ca_conf" \
    -extensions leaf -in "$out.csr" -out "$out.pem" "$@" 2>/dev/null ||
    die "openssl ca failed for $id"
  rm -f "$out.csr"
}

cmd=${1:-}
[ $# -ge 2 ] || die "usage: see the comment at the top of $0"
dir=$2
mkdir -p "$dir"
case "$cmd" in
  mesh)
    shift 2
    if [ ! -f "$dir/root.pem" ]; then
      newkey "$dir/root.key"
      openssl req -x509 -new -key "$dir/root.key" -sha256 -days 3650 \
        -subj "/O=nodemesh test/CN=mesh root" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/root.pem"
    fi
    ext=$(mktemp "$dir/.ext.XXXXXX")
    trap 'rm -f "$ext"' EXIT
    cat >"$ext" <<EOF
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    for node in "$@"; do
      mkdir -p "$dir/$node"
      newkey "$dir/$node/intermediate.key"
      openssl req -new -key "$dir/$node/intermediate.key" \
        -subj "/O=nodemesh test/CN=$node intermediate" \
        -out "$dir/$node/intermediate.csr"
      openssl x509 -req -in "$dir/$node/intermediate.csr" -sha256 \
        -days 1825 -CA "$dir/root.pem" -CAkey "$dir/root.key" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" \
        -out "$dir/$node/intermediate.pem" 2>/dev/null
      rm -f "$dir/$node/intermediate.csr"
    done
    ;;
  leaf | expired)
    [ $# -eq 5 ] || die "usage: $0 $cmd DIR NODE SPIFFE_ID OUT"
    node=$3 id=$4 out=$5
    inter=$dir/$node/intermediate
    [ -f "$inter.pem" ] || die "$inter.pem: no such intermediate (run: $0 mesh $dir $node)"
    with_ca "$dir" "$inter.pem" "$inter.key"
    if [ "$cmd" = leaf ]; then
      sign_leaf "$id" "$out" -days 30
    else
      sign_leaf "$id" "$out" -startdate 20200101000000Z \
        -enddate 20210101000000Z
    fi
    cat "$out.pem" "$inter.pem" >"$out.chain.pem"
    ;;
  untrusted)
    [ $# -eq 4 ] || die "usage: $0 untrusted DIR SPIFFE_ID OUT"
    id=$3 out=$4
    newkey "$out-root.key"
    openssl req -x509 -new -key "$out-root.key" -sha256 -days 3650 \
      -subj "/O=not the mesh/CN=untrusted root" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$out-root.pem"
    with_ca "$dir" "$out-root.pem" "$out-root.key"
    sign_leaf "$id" "$out" -days 30
    cp "$out.pem" "$out.chain.pem"
    ;;
  *)
    die "unknown command '$cmd' (mesh, leaf, expired, untrusted)"
    ;;
esac

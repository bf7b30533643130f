#!/usr/bin/env bash
# candidate.sh — the nodemesh candidate for peers.sh: writes an App Mesh model
# in which nodemesh-agent is a VirtualGateway listening on $CANDIDATE_PORT and
# routing every request to a VirtualNode at $UPSTREAM_HOST:$UPSTREAM_PORT,
# then execs the agent (so peers.sh's SIGTERM reaches it directly).
#
# From peers.sh: CANDIDATE_PORT UPSTREAM_HOST UPSTREAM_PORT RUN_DIR.
# From run.sh:   NM_BENCH_PIN_DIR NM_BENCH_CGROUP_ROOT NM_BENCH_AGENT_CGROUP
#                (the same paths run.sh later passes to --cleanup),
#                NM_BENCH_STATE_DIR (the agent's pid goes there).
# Overrides:     AGENT_BIN, AGENT_WORKERS=1, ADMIN_PORT, OUTBOUND_PORT,
#                AGENT_EXTRA_FLAGS (word-split, appended).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
AGENT_BIN=${AGENT_BIN:-$REPO/build/agent/nodemesh-agent}
AGENT_WORKERS=${AGENT_WORKERS:-1}

die() { echo "candidate.sh: $*" >&2; exit 1; }
for v in CANDIDATE_PORT UPSTREAM_HOST UPSTREAM_PORT RUN_DIR NM_BENCH_PIN_DIR NM_BENCH_CGROUP_ROOT \
         NM_BENCH_AGENT_CGROUP; do
  [[ -n ${!v:-} ]] || die "$v is not set (run bench/http1/run.sh, not this script)"
done

# A free TCP port on 127.0.0.1 (the kernel picks; the tiny race with other
# binders is acceptable on a benchmark host).
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ADMIN_PORT=${ADMIN_PORT:-$(free_port)}
OUTBOUND_PORT=${OUTBOUND_PORT:-$(free_port)}

CONFIG_DIR="$RUN_DIR/nodemesh-config"
rm -rf "$CONFIG_DIR"
mkdir -p "$CONFIG_DIR"

# One file per resource, in the shape `aws appmesh create-*
# --cli-input-json` takes.
cat > "$CONFIG_DIR/mesh.json" <<EOF
{"meshName": "bench", "spec": {}}
EOF
cat > "$CONFIG_DIR/ingress-vg.json" <<EOF
{
  "meshName": "bench",
  "virtualGatewayName": "ingress",
  "spec": {
    "listeners": [{"portMapping": {"port": $CANDIDATE_PORT, "protocol": "http"}}]
  }
}
EOF
cat > "$CONFIG_DIR/all-gateway-route.json" <<EOF
{
  "meshName": "bench",
  "virtualGatewayName": "ingress",
  "gatewayRouteName": "all",
  "spec": {
    "httpRoute": {
      "match": {"prefix": "/"},
      "action": {"target": {"virtualService": {"virtualServiceName": "upstream.bench.local"}}}
    }
  }
}
EOF
cat > "$CONFIG_DIR/upstream-vs.json" <<EOF
{
  "meshName": "bench",
  "virtualServiceName": "upstream.bench.local",
  "spec": {"provider": {"virtualNode": {"virtualNodeName": "upstream"}}}
}
EOF
cat > "$CONFIG_DIR/upstream-vn.json" <<EOF
{
  "meshName": "bench",
  "virtualNodeName": "upstream",
  "spec": {
    "listeners": [{"portMapping": {"port": $UPSTREAM_PORT, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "$UPSTREAM_HOST"}}
  }
}
EOF

if [[ -n ${NM_BENCH_STATE_DIR:-} ]]; then
  mkdir -p "$NM_BENCH_STATE_DIR"
  echo "$$" > "$NM_BENCH_STATE_DIR/agent.pid"  # exec keeps the pid
  echo "127.0.0.1:$ADMIN_PORT" > "$NM_BENCH_STATE_DIR/admin_address"
fi

# shellcheck disable=SC2206  # AGENT_EXTRA_FLAGS is meant to be word-split
extra=(${AGENT_EXTRA_FLAGS:-})
exec "$AGENT_BIN" \
  --config_dir="$CONFIG_DIR" \
  --workers="$AGENT_WORKERS" \
  --gateway_address=127.0.0.1 \
  --admin_address="127.0.0.1:$ADMIN_PORT" \
  --outbound_port="$OUTBOUND_PORT" \
  --bpf_pin_dir="$NM_BENCH_PIN_DIR" \
  --cgroup_root="$NM_BENCH_CGROUP_ROOT" \
  --agent_cgroup="$NM_BENCH_AGENT_CGROUP" \
  --api_auth=none \
  --logtostderr \
  "${extra[@]}"

#!/usr/bin/env bash
# run.sh — cross-node benchmark: a client on node A calling an HTTP/1.1
# service on node B, interleaved in one run (see bench/cross-node/README.md):
#   direct        wrk in A dials 198.18.2.1:9000 across the bridge, plain TCP
#                 (not a mesh workload: no redirect, no proxy, no TLS)
#   nodemesh      wrk runs as a workload of virtual node `front` and calls
#                 back.m.local:9000: A's BPF connect4 -> A's proxy (HTTP
#                 routing) -> mutual TLS 1.3 + HTTP/2 CONNECT (HBONE) to B's
#                 agent on 198.18.2.1:15008 -> B's workload (nginx)
#   haproxy-http  the peer a user would build: HAProxy in A, plain on
#                 127.0.0.1, mode http, keep-alive pool of mutual-TLS 1.3
#                 connections to HAProxy in B (mode http), which forwards
#                 plain to nginx over a keep-alive pool
#   haproxy-tcp   the same two HAProxies in mode tcp: one mutual-TLS 1.3
#                 connection per client connection, bytes only (L4 + mTLS,
#                 what ztunnel does without waypoints)
# Each with wrk -t1 at -c16 and -c1 (--latency: p50/p99) on a 1 KiB body and
# on a 1 MiB file (bulk).
#
#   sudo bench/cross-node/run.sh                      # about 9 minutes
#   sudo ROUNDS=2 DUR=3 bench/cross-node/run.sh       # quick look, ~3 min
#
# Env knobs: ROUNDS=5 DUR=5 (s per wrk run) CONNS=16 WARMUP=2 CHECK_N=20000
# (requests of the exact-count check) SCEN="direct nodemesh haproxy-http
# haproxy-tcp" TESTS="k1-c16 k1-c1 m1-c16 m1-c1" NICE=0 CLIENT_CPU=1
# SERVER_CPU=0 PROXY_CPU=0 PIN=1 AGENT_WORKERS=1 HAPROXY_THREADS=1
# AGENT_EXTRA_FLAGS AGENT_BIN CTL_BIN OUT_DIR=/tmp/nodemesh-bench-cross-node
# HOLD=1 (at the end, keep everything up for a look until SIGTERM)
# NM_FRESH=1 (restart both agents before each nodemesh test: see README,
# "The tunnel wedges"; 0 measures on one long-lived tunnel)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
AGENT_BIN=${AGENT_BIN:-$REPO/build/agent/nodemesh-agent}
CTL_BIN=${CTL_BIN:-$REPO/build/ctl/nodemeshctl}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
CONNS=${CONNS:-16}
WARMUP=${WARMUP:-2}
CHECK_N=${CHECK_N:-20000}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVER_CPU=${SERVER_CPU:-0}
PROXY_CPU=${PROXY_CPU:-0}
PIN=${PIN:-1}
NICE=${NICE:-0}
AGENT_WORKERS=${AGENT_WORKERS:-1}
HAPROXY_THREADS=${HAPROXY_THREADS:-1}
AGENT_EXTRA_FLAGS=${AGENT_EXTRA_FLAGS:-}
HOLD=${HOLD:-0}
NM_FRESH=${NM_FRESH:-1}
OUT_DIR=${OUT_DIR:-/tmp/nodemesh-bench-cross-node}
read -ra SCEN <<< "${SCEN:-direct nodemesh haproxy-http haproxy-tcp}"
read -ra TESTS <<< "${TESTS:-k1-c$CONNS k1-c1 m1-c$CONNS m1-c1}"
SMALL_BYTES=1024
BULK_BYTES=1048576
STAMP=$(date +%Y%m%d-%H%M%S)
PY=/usr/bin/python3

# Addresses: both nodes on one /15 across a bridge in a third namespace.
A_ADDR=198.18.1.1
B_ADDR=198.18.2.1
SERVER_PORT=9000    # nginx on B, the workload of virtual node `back`
TUNNEL_PORT=15008   # each agent's tunnel listener
ADMIN=127.0.0.1:15000
STATUS=127.0.0.1:9001          # nginx stub_status on B (the exact count)
HAP_HTTP_A=127.0.0.1:10080     # HAProxy A, plain, mode http
HAP_TCP_A=127.0.0.1:10081      # HAProxy A, plain, mode tcp
HAP_HTTP_B=$B_ADDR:15443       # HAProxy B, mutual TLS, mode http
HAP_TCP_B=$B_ADDR:15444        # HAProxy B, mutual TLS, mode tcp
MESH=m
SERVICE=back.m.local

exec 9>&2
log() { printf '[%(%H:%M:%S)T] cross-node: %s\n' -1 "$*" >&9; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- checks
[[ $(id -u) == 0 ]] || die "run as root (BPF, cgroups, network namespaces)"
for t in nginx haproxy wrk h2load openssl nsenter taskset curl ip setsid; do
  command -v "$t" > /dev/null || die "$t is missing (scripts/install-deps installs it)"
done
for b in "$AGENT_BIN" "$CTL_BIN"; do
  for _ in $(seq 1 60); do [[ -x $b ]] && break; sleep 1; done # may be relinking
  [[ -x $b ]] || die "no $b (build it: scripts/build, or set AGENT_BIN / CTL_BIN)"
done
NCPU=$(nproc)
for c in $CLIENT_CPU $SERVER_CPU $PROXY_CPU; do ((c < NCPU)) || die "CPU $c does not exist (nproc=$NCPU)"; done
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || die "no cgroup2 mount in /proc/mounts"
if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

# ---------------------------------------------------------------- names
# Everything this run creates carries its pid: parallel runs, other
# engineers' namespaces and an agent on the host are never touched.
ID=nm-xn-$$
FABRIC=$ID-f
TMPD=/tmp/$ID
RUN=$OUT_DIR/run-$STAMP-$$
PKI=$RUN/pki
mkdir -p "$RUN/raw" "$TMPD/bin" "$PKI"
# Private copies: a build relinking build/ mid-run must not change or
# break what is measured (nodemeshctl is exec'd for every mesh run).
cp "$AGENT_BIN" "$TMPD/bin/nodemesh-agent"
cp "$CTL_BIN" "$TMPD/bin/nodemeshctl"
AGENT=$TMPD/bin/nodemesh-agent
CTL=$TMPD/bin/nodemeshctl

declare -A NS_OF=([a]=$ID-a [b]=$ID-b)
declare -A ADDR_OF=([a]=$A_ADDR [b]=$B_ADDR)
node_ns() { echo "/var/run/netns/${NS_OF[$1]}"; }
pin_dir() { echo "/sys/fs/bpf/$ID-$1"; }
cg_dir() { echo "$CG2/$ID-$1"; }
state_dir() { echo "$TMPD/$1/state"; }
conf_dir() { echo "$RUN/$1/config"; }
sock() { echo "$TMPD/$1/state/agent.sock"; }
in_node() { local n=$1; shift; nsenter --net="$(node_ns "$n")" "$@"; }

# ---------------------------------------------------------------- cleanup
declare -A SESS=() # name -> pid (each started with setsid: pid == session id)
CLIENT_PID=
NETNS_MADE=()
AGENTS_STARTED=()

stop_session() { # pid
  local i
  kill -TERM -- "-$1" 2> /dev/null || kill -TERM "$1" 2> /dev/null || return 0
  for i in $(seq 1 40); do kill -0 "$1" 2> /dev/null || break; sleep 0.1; done
  kill -KILL -- "-$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

rm_cgroup_tree() { # dir: kill what is left in it, remove leaves first
  local d=$1 c i
  [[ -d $d ]] || return 0
  if [[ -e $d/cgroup.kill ]]; then echo 1 > "$d/cgroup.kill" 2> /dev/null || true; fi
  for i in $(seq 1 30); do
    grep -q 'populated 0' "$d/cgroup.events" 2> /dev/null && break
    sleep 0.1
  done
  while read -r c; do rmdir "$c" 2> /dev/null || true; done < <(find "$d" -depth -type d)
  [[ -d $d ]] && log "warning: could not remove cgroup $d"
  return 0
}

agent_flags() { # node -> words in FLAGS (shared by the run and --cleanup)
  local n=$1
  FLAGS=(--node_name="$n" --config_dir="$(conf_dir "$n")" --bpf_pin_dir="$(pin_dir "$n")"
    --cgroup_root="$(cg_dir "$n")/workloads" --agent_cgroup="$(cg_dir "$n")/agent"
    --state_dir="$(state_dir "$n")" --admin_socket="$(sock "$n")")
}

cleanup() {
  local rc=$? name n
  trap - EXIT INT TERM
  if [[ $HOLD == 1 ]]; then
    log "HOLD=1: leaving everything up until this script (pid $$) gets SIGTERM"
    HOLDING=1
    trap 'HOLDING=0' TERM
    while ((HOLDING)); do sleep 1; done
    trap - TERM
  fi
  if [[ -n $CLIENT_PID ]]; then stop_session "$CLIENT_PID"; fi
  for name in haproxy-a haproxy-b nginx; do
    if [[ -n ${SESS[$name]:-} ]]; then stop_session "${SESS[$name]}"; fi
  done
  for n in a b; do
    if [[ -n ${SESS[agent-$n]:-} ]]; then
      kill -TERM "${SESS[agent-$n]}" 2> /dev/null || true
      for _ in $(seq 1 80); do kill -0 "${SESS[agent-$n]}" 2> /dev/null || break; sleep 0.1; done
      stop_session "${SESS[agent-$n]}"
    fi
  done
  for n in "${AGENTS_STARTED[@]}"; do
    # The agent leaves its datapath pinned on exit by design; remove it.
    agent_flags "$n"
    if ! in_node "$n" "$AGENT" --cleanup "${FLAGS[@]}" --logtostderr > "$RUN/cleanup-$n.log" 2>&1; then
      log "warning: agent --cleanup on node $n failed (see $RUN/cleanup-$n.log)"
    fi
  done
  for n in a b; do
    rm_cgroup_tree "$(cg_dir "$n")"
    if [[ -d $(pin_dir "$n") ]]; then rm -rf "$(pin_dir "$n")" 2> /dev/null || log "warning: $(pin_dir "$n") left behind"; fi
  done
  for name in "${NETNS_MADE[@]}"; do
    ip netns del "$name" 2> /dev/null || log "warning: netns $name left behind"
  done
  rm -rf "$TMPD"
  ((rc == 0)) || log "failed (status $rc); logs and raw outputs in $RUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_sess() { # name node cpu cmd... (inside the node's netns, pinned, own session)
  local name=$1 node=$2 cpu=$3
  shift 3
  local pfx=(nice -n "$NICE")
  [[ $PIN == 1 ]] && pfx+=(taskset -c "$cpu")
  setsid nsenter --net="$(node_ns "$node")" "${pfx[@]}" "$@" >> "$RUN/$name.log" 2>&1 < /dev/null 9>&- &
  SESS[$name]=$!
}

# Runs a client in the background and waits for it, so that a signal reaches
# the trap at once; its output goes to $1.
client() { # outfile cmd...
  local out=$1 rc=0
  shift
  "$@" > "$out" 2>&1 < /dev/null 9>&- &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  return "$rc"
}

# ---------------------------------------------------------------- PKI
# One root CA; per node an intermediate (the agents' --signing_cert, from
# which they mint their leaves) and, for the HAProxy peer, a leaf signed by
# the same intermediate: HAProxy gets certificates from the same PKI as the
# agents, P-256 like the agents' leaves, and sends leaf + intermediate.
make_pki() {
  local n
  (
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out root.key
    openssl req -x509 -new -key root.key -subj "/O=nodemesh bench/CN=root" -days 30 -out root.pem \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > ca.ext
    for n in a b; do
      openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$n.key"
      openssl req -new -key "$n.key" -subj "/O=nodemesh bench/CN=node-$n" -out "$n.csr"
      openssl x509 -req -in "$n.csr" -CA root.pem -CAkey root.key -CAcreateserial -days 30 \
        -extfile ca.ext -out "$n.pem"
      openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "haproxy-$n.key"
      openssl req -new -key "haproxy-$n.key" -subj "/O=nodemesh bench/CN=haproxy-$n.bench" -out "haproxy-$n.csr"
      printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:haproxy-%s.bench\n' "$n" > "haproxy-$n.ext"
      openssl x509 -req -in "haproxy-$n.csr" -CA "$n.pem" -CAkey "$n.key" -CAcreateserial -days 30 \
        -extfile "haproxy-$n.ext" -out "haproxy-$n.crt"
      cat "haproxy-$n.crt" "$n.pem" "haproxy-$n.key" > "haproxy-$n.pem" # leaf, chain, key
    done
  ) > "$RUN/pki.log" 2>&1 || { cat "$RUN/pki.log" >&2; die "PKI generation failed"; }
}

# ---------------------------------------------------------------- configs
write_configs() {
  local n body
  # App Mesh model (the same on both nodes): `front` calls back.m.local,
  # whose virtual node `back` has a plain http listener on 9000 (no tls
  # block: a STRICT listener would make the kernel refuse the direct path).
  for n in a b; do
    mkdir -p "$(conf_dir "$n")/cluster" "$(state_dir "$n")"
    cat > "$(conf_dir "$n")/model.json" << EOF
[
 {"meshName": "$MESH", "spec": {}},
 {"meshName": "$MESH", "virtualNodeName": "front",
  "spec": {"backends": [{"virtualService": {"virtualServiceName": "$SERVICE"}}]}},
 {"meshName": "$MESH", "virtualNodeName": "back",
  "spec": {"listeners": [{"portMapping": {"port": $SERVER_PORT, "protocol": "http"}}]}},
 {"meshName": "$MESH", "virtualServiceName": "$SERVICE",
  "spec": {"provider": {"virtualNode": {"virtualNodeName": "back"}}}}
]
EOF
    cat > "$(conf_dir "$n")/cluster/nodes.json" << EOF
[{"name": "a", "address": "$A_ADDR", "tunnelPort": $TUNNEL_PORT, "workloadCidrs": ["198.18.1.0/24"]},
 {"name": "b", "address": "$B_ADDR", "tunnelPort": $TUNNEL_PORT, "workloadCidrs": ["198.18.2.0/24"]}]
EOF
    # Without etcd, A learns of B's workload from this file; B has it
    # registered by `nodemeshctl run` as well.
    cat > "$(conf_dir "$n")/cluster/workloads.json" << EOF
[{"node": "b", "mesh": "$MESH", "virtualNode": "back", "address": "$B_ADDR", "ports": [$SERVER_PORT]}]
EOF
  done

  # nginx on B: 1 KiB from memory (`return`, as bench/e2e and bench/h2, so the
  # server is cheap), 1 MiB from a file (sendfile); stub_status on loopback
  # for the exact count (it counts every request nginx read).
  mkdir -p "$RUN/nginx/www"
  head -c "$BULK_BYTES" /dev/urandom > "$RUN/nginx/www/m1"
  body=$(head -c "$SMALL_BYTES" /dev/zero | tr '\0' 'x')
  cat > "$RUN/nginx.conf" << EOF
worker_processes 1;
daemon off;
master_process on;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  default_type application/octet-stream;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  sendfile on;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  client_body_temp_path $RUN/nginx/tmp_body;
  proxy_temp_path $RUN/nginx/tmp_proxy;
  fastcgi_temp_path $RUN/nginx/tmp_fastcgi;
  uwsgi_temp_path $RUN/nginx/tmp_uwsgi;
  scgi_temp_path $RUN/nginx/tmp_scgi;
  server {
    listen $B_ADDR:$SERVER_PORT backlog=4096;
    root $RUN/nginx/www;
    location = /k1 { return 200 "$body"; }
    location = /m1 { }
  }
  server { listen $STATUS; location / { stub_status; } }
}
EOF

  # HAProxy 2.6, one process per node, $HAPROXY_THREADS thread(s) like the
  # agent's --workers. TLS 1.3 only, mutual (verify required both ways,
  # certificates from the same PKI), no session resumption (the agent has
  # none either), OpenSSL's default TLS 1.3 suites (as the agent).
  cat > "$RUN/haproxy-a.cfg" << EOF
global
  nbthread $HAPROXY_THREADS
  maxconn 4000
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend http_out
  mode http
  bind $HAP_HTTP_A
  default_backend node_b_http
backend node_b_http
  mode http
  server b $HAP_HTTP_B ssl crt $PKI/haproxy-a.pem ca-file $PKI/root.pem verify required verifyhost haproxy-b.bench sni str(haproxy-b.bench) no-ssl-reuse alpn http/1.1
frontend tcp_out
  mode tcp
  bind $HAP_TCP_A
  default_backend node_b_tcp
backend node_b_tcp
  mode tcp
  server b $HAP_TCP_B ssl crt $PKI/haproxy-a.pem ca-file $PKI/root.pem verify required verifyhost haproxy-b.bench sni str(haproxy-b.bench) no-ssl-reuse
EOF
  cat > "$RUN/haproxy-b.cfg" << EOF
global
  nbthread $HAPROXY_THREADS
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets
defaults
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend http_in
  mode http
  bind $HAP_HTTP_B ssl crt $PKI/haproxy-b.pem ca-file $PKI/root.pem verify required alpn http/1.1
  default_backend nginx_http
backend nginx_http
  mode http
  server nginx $B_ADDR:$SERVER_PORT
frontend tcp_in
  mode tcp
  bind $HAP_TCP_B ssl crt $PKI/haproxy-b.pem ca-file $PKI/root.pem verify required
  default_backend nginx_tcp
backend nginx_tcp
  mode tcp
  server nginx $B_ADDR:$SERVER_PORT
EOF
  for n in a b; do haproxy -c -q -f "$RUN/haproxy-$n.cfg" || die "haproxy-$n config invalid"; done

  cat > "$RUN/report.lua" << 'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.2f bytes=%d p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), summary.bytes,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
EOF
}

# ---------------------------------------------------------------- topology
make_nodes() {
  local n ns
  ip netns add "$FABRIC"; NETNS_MADE+=("$FABRIC")
  ip -n "$FABRIC" link set lo up
  ip -n "$FABRIC" link add br0 type bridge
  ip -n "$FABRIC" link set br0 up
  for n in a b; do
    ns=${NS_OF[$n]}
    ip netns add "$ns"; NETNS_MADE+=("$ns")
    ip -n "$ns" link set lo up
    # Both ends are created inside the test namespaces (never the root one).
    ip link add eth0 netns "$ns" type veth peer name "port-$n" netns "$FABRIC"
    ip -n "$FABRIC" link set "port-$n" master br0 up
    ip -n "$ns" addr add "${ADDR_OF[$n]}/15" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

start_agent() { # node
  local n=$1 extra
  # shellcheck disable=SC2206  # AGENT_EXTRA_FLAGS is meant to be word-split
  extra=($AGENT_EXTRA_FLAGS)
  agent_flags "$n"
  [[ " ${AGENTS_STARTED[*]} " == *" $n "* ]] || AGENTS_STARTED+=("$n")
  start_sess "agent-$n" "$n" "$PROXY_CPU" "$AGENT" "${FLAGS[@]}" --api_auth=none --workers="$AGENT_WORKERS" \
    --drain_seconds=1 --ca_bundle="$PKI/root.pem" --signing_cert="$PKI/$n.pem" --signing_key="$PKI/$n.key" \
    --logtostderr "${extra[@]}"
}

wait_ready() { # node
  local n=$1
  for _ in $(seq 1 150); do
    in_node "$n" curl -sf -o /dev/null --max-time 1 "http://$ADMIN/ready" && return 0
    kill -0 "${SESS[agent-$n]}" 2> /dev/null || { tail -20 "$RUN/agent-$n.log" >&2; die "agent on $n exited"; }
    sleep 0.1
  done
  tail -20 "$RUN/agent-$n.log" >&2
  die "agent on $n not ready in 15 s"
}

# ---------------------------------------------------------------- scenarios
# How each scenario's client runs on node A: a command prefix and a base URL.
declare -A BASE=(
  [direct]="http://$B_ADDR:$SERVER_PORT"
  [nodemesh]="http://$SERVICE:$SERVER_PORT"
  [haproxy-http]="http://$HAP_HTTP_A"
  [haproxy-tcp]="http://$HAP_TCP_A"
)
client_prefix() { # scenario -> words in PFX
  PFX=(nsenter --net="$(node_ns a)" nice -n "$NICE")
  [[ $PIN == 1 ]] && PFX+=(taskset -c "$CLIENT_CPU")
  if [[ $1 == nodemesh ]]; then
    PFX+=("$CTL" run --admin_socket="$(sock a)" --mesh "$MESH" --virtual-node front --)
  fi
  return 0
}
url() { # scenario test
  case $2 in
    k1-*) echo "${BASE[$1]}/k1" ;;
    m1-*) echo "${BASE[$1]}/m1" ;;
  esac
}
body_bytes() { case $1 in k1-*) echo "$SMALL_BYTES" ;; m1-*) echo "$BULK_BYTES" ;; esac; }
test_conns() { echo "${1##*-c}"; }

proxy_pids() { # scenario -> "A-side pid B-side pid" ('' when no proxy)
  case $1 in
    nodemesh) echo "${SESS[agent-a]} ${SESS[agent-b]}" ;;
    haproxy-*) echo "${SESS[haproxy-a]} ${SESS[haproxy-b]}" ;;
    *) echo "" ;;
  esac
}

# Run time of a process, all threads: schedstat (ns) and utime+stime (ticks).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat")
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $((${12} + ${13}))
}

metric() { # node regex -> sum of the matching samples of the agent's /metrics
  in_node "$1" curl -s --max-time 2 "http://$ADMIN/metrics" |
    awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $NF } END { printf "%.0f\n", s }'
}
tunnel_counters() { # -> "A streams out, A bytes out+in, B streams in, B bytes"
  echo "a_streams_out=$(metric a '^nodemesh_tunnel_streams_total\\{.*direction="out"')" \
    "a_bytes=$(metric a '^nodemesh_tunnel_bytes_total')" \
    "b_streams_in=$(metric b '^nodemesh_tunnel_streams_total\\{.*direction="in"')" \
    "b_bytes=$(metric b '^nodemesh_tunnel_bytes_total')" \
    "a_requests=$(metric a '^nodemesh_requests_total\\{')"
}
nginx_requests() { in_node b curl -s --max-time 2 "http://$STATUS/" | awk 'NR == 3 { print $3 }'; }

# One 1 KiB request through the mesh within 2 s: is the tunnel usable?
mesh_probe() {
  local out
  out=$(nsenter --net="$(node_ns a)" "$CTL" run --admin_socket="$(sock a)" --mesh "$MESH" --virtual-node front -- \
    curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 2 "${BASE[nodemesh]}/k1" 2> /dev/null) || true
  [[ $out == "200 $SMALL_BYTES" ]]
}

# Stop both agents (SIGTERM: drain) and start them again with the same
# flags: a new tunnel connection, nothing else changes (pins, registrations
# and VIPs are taken over from the pins and --state_dir).
restart_agents() {
  local n
  for n in a b; do
    kill -TERM "${SESS[agent-$n]}" 2> /dev/null || true
    for _ in $(seq 1 80); do kill -0 "${SESS[agent-$n]}" 2> /dev/null || break; sleep 0.1; done
    stop_session "${SESS[agent-$n]}"
    start_agent "$n"
    wait_ready "$n"
  done
  for _ in $(seq 1 50); do mesh_probe && return 0; sleep 0.2; done
  die "the mesh path does not answer after restarting the agents"
}

measure() { # round scenario test: wrk output, proxies' CPU and tunnel counters in raw/
  local r=$1 s=$2 t=$3 base="$RUN/raw/r$1__$2__$3" pids a b an0 bn0 at0 bt0 an1 bn1 at1 bt1
  if [[ $s == nodemesh && $NM_FRESH == 1 ]]; then restart_agents; fi
  client_prefix "$s"
  # The same short warm-up before every test on every path (1 KiB: pools
  # and TLS sessions exist, as in steady state).
  client /dev/null "${PFX[@]}" wrk -t1 -c"$CONNS" -d1s "${BASE[$s]}/k1" || true
  pids=$(proxy_pids "$s")
  if [[ -n $pids ]]; then
    read -r a b <<< "$pids"
    an0=$(cpu_ns "$a"); bn0=$(cpu_ns "$b"); at0=$(cpu_ticks "$a"); bt0=$(cpu_ticks "$b")
  fi
  [[ $s == nodemesh ]] && echo "before $(tunnel_counters)" > "$base.tunnel"
  client "$base.txt" "${PFX[@]}" wrk -t1 -c"$(test_conns "$t")" -d"${DUR}s" --latency \
    -s "$RUN/report.lua" "$(url "$s" "$t")" || log "warning: wrk failed (see $base.txt)"
  if [[ -n $pids ]]; then
    an1=$(cpu_ns "$a"); bn1=$(cpu_ns "$b"); at1=$(cpu_ticks "$a"); bt1=$(cpu_ticks "$b")
    echo "a_ns=$((an1 - an0)) b_ns=$((bn1 - bn0)) a_ticks=$((at1 - at0)) b_ticks=$((bt1 - bt0)) clk_tck=$CLK_TCK" > "$base.cpu"
  fi
  if [[ $s == nodemesh ]]; then
    echo "after $(tunnel_counters)" >> "$base.tunnel"
    # wrk stops with requests in flight: does the tunnel still carry a request?
    if mesh_probe; then echo "wedged_after=0" >> "$base.tunnel"; else
      echo "wedged_after=1" >> "$base.tunnel"
      log "warning: after $t the mesh path no longer answers (tunnel wedged)"
      if [[ $NM_FRESH != 1 ]]; then restart_agents; fi
    fi
  fi
  return 0
}

# ---------------------------------------------------------------- setup
CLK_TCK=$(getconf CLK_TCK)
log "PKI, configs and namespaces $FABRIC, ${NS_OF[a]} ($A_ADDR), ${NS_OF[b]} ($B_ADDR)"
make_pki
write_configs
"$CTL" validate "$(conf_dir a)" > "$RUN/validate.log" 2>&1 || { cat "$RUN/validate.log" >&2; die "mesh model invalid"; }
make_nodes
rc=0
in_node a curl -s -o /dev/null --max-time 1 "http://$B_ADDR:1/" 2> /dev/null || rc=$?
((rc == 7)) || die "node B not reachable from A across the bridge (curl status $rc, want 7: refused)"
in_node b nginx -t -q -p "$RUN/nginx" -e "$RUN/nginx/error.log" -c "$RUN/nginx.conf" || die "nginx config invalid"

log "starting the agents (pins $(pin_dir a), $(pin_dir b); cgroups $(cg_dir a), $(cg_dir b))"
start_agent a
start_agent b
wait_ready a
wait_ready b

log "starting nginx on B as a workload of virtual node back, and the HAProxies"
start_sess nginx b "$SERVER_CPU" "$CTL" run --admin_socket="$(sock b)" --mesh "$MESH" --virtual-node back \
  --address "$B_ADDR" -- nginx -p "$RUN/nginx" -e "$RUN/nginx/error.log" -c "$RUN/nginx.conf"
start_sess haproxy-b b "$PROXY_CPU" haproxy -db -f "$RUN/haproxy-b.cfg"
start_sess haproxy-a a "$PROXY_CPU" haproxy -db -f "$RUN/haproxy-a.cfg"

# ---------------------------------------------------------------- path checks
# Every path answers the full body (both sizes), the mesh's through the
# tunnel; then an exact count: CHECK_N requests through each path all succeed
# and nginx on B counted exactly CHECK_N more requests.
log "checking each path"
for s in "${SCEN[@]}"; do
  client_prefix "$s"
  for t in k1 m1; do
    ok=0
    for _ in $(seq 1 50); do
      out=$("${PFX[@]}" curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 2 \
        "${BASE[$s]}/$t" 2> /dev/null) || true
      [[ $out == "200 $(body_bytes "$t-")" ]] && { ok=1; break; }
      sleep 0.2
    done
    ((ok)) || die "$s: no full answer from ${BASE[$s]}/$t (last: '$out')"
  done
done
# The mesh path really crossed the tunnel, and HAProxy really speaks mutual
# TLS 1.3 (a client without a certificate is refused).
in_node a curl -s "http://$ADMIN/metrics" > "$RUN/metrics-a-check.txt"
grep -qE '^nodemesh_tunnel_streams_total\{direction="out"\} [1-9]' "$RUN/metrics-a-check.txt" ||
  die "A's tunnel carried no stream after the nodemesh check (see $RUN/metrics-a-check.txt)"
in_node a openssl s_client -connect "$HAP_HTTP_B" -servername haproxy-b.bench -CAfile "$PKI/root.pem" \
  -cert "$PKI/haproxy-a.crt" -key "$PKI/haproxy-a.key" -cert_chain "$PKI/a.pem" -verify_return_error \
  -brief < /dev/null > "$RUN/haproxy-tls.txt" 2>&1 || true
grep -q 'Protocol version: TLSv1.3' "$RUN/haproxy-tls.txt" || die "HAProxy B does not speak TLS 1.3 (see $RUN/haproxy-tls.txt)"
HAP_CIPHER=$(sed -n 's/^Ciphersuite: //p' "$RUN/haproxy-tls.txt")
if in_node a curl -sk --max-time 2 -o /dev/null "https://$HAP_HTTP_B/k1" 2> /dev/null; then
  die "HAProxy B answered a client without a certificate"
fi

for s in "${SCEN[@]}"; do
  client_prefix "$s"
  base="$RUN/raw/check__$s"
  n0=$(nginx_requests)
  [[ $s == nodemesh ]] && echo "before $(tunnel_counters)" > "$base.tunnel"
  client "$base.txt" "${PFX[@]}" h2load --h1 -c"$CONNS" -n "$CHECK_N" "${BASE[$s]}/k1" ||
    log "warning: h2load failed (see $base.txt)"
  [[ $s == nodemesh ]] && echo "after $(tunnel_counters)" >> "$base.tunnel"
  n1=$(nginx_requests)
  echo "server_requests=$((n1 - n0 - 1))" >> "$base.txt" # stub_status counts its own request
  grep -q "requests: $CHECK_N total, $CHECK_N started, $CHECK_N done, $CHECK_N succeeded" "$base.txt" ||
    die "$s: not all of $CHECK_N requests succeeded: $(grep -E '^requests:' "$base.txt")"
  grep -q "status codes: $CHECK_N 2xx" "$base.txt" || die "$s: not all $CHECK_N answers 2xx"
  ((n1 - n0 - 1 == CHECK_N)) || die "$s: nginx counted $((n1 - n0 - 1)) requests, not $CHECK_N"
done

# ---------------------------------------------------------------- run
busy_pct() { # over 2 s, all CPUs: 100 - idle%
  local a b tot=0 i
  read -ra a < /proc/stat; sleep 2; read -ra b < /proc/stat
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo $((100 - 100 * (b[4] - a[4] + b[5] - a[5]) / (tot > 0 ? tot : 1)))
}
cat > "$RUN/meta.env" << EOF
stamp=$STAMP
rounds=$ROUNDS
dur=$DUR
warmup=$WARMUP
conns=$CONNS
check_n=$CHECK_N
pin=$PIN
client_cpu=$CLIENT_CPU
server_cpu=$SERVER_CPU
proxy_cpu=$PROXY_CPU
nice=$NICE
agent_workers=$AGENT_WORKERS
haproxy_threads=$HAPROXY_THREADS
nm_fresh=$NM_FRESH
agent_extra_flags=$AGENT_EXTRA_FLAGS
agent_bin=$AGENT_BIN ($(stat -c %y "$AGENT_BIN" | cut -d. -f1))
tree=$(git -C "$REPO" rev-parse --short HEAD 2> /dev/null || echo '?')
haproxy_cipher=$HAP_CIPHER
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before_pct=$(busy_pct)
kernel=$(uname -r)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
nproc=$NCPU
nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')
haproxy=$(haproxy -v | head -1 | awk '{print $3}')
wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')
openssl=$(openssl version | awk '{print $2}')
EOF
BUSY=$(sed -n 's/^busy_before_pct=//p' "$RUN/meta.env")
((BUSY <= 10)) || log "warning: the machine was ${BUSY}% busy before the run: expect noisy numbers"

log "warm-up (${WARMUP}s per path, discarded)"
for s in "${SCEN[@]}"; do
  client_prefix "$s"
  client /dev/null "${PFX[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${BASE[$s]}/k1" || true
done

# Interleaved rounds, path order rotated each round, so that every path sees
# the same noise from the machine's neighbours.
n=${#SCEN[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < n; i++)); do
    s=${SCEN[$(((i + r - 1) % n))]}
    log "round $r/$ROUNDS: $s (${TESTS[*]}, ${DUR}s each)"
    for t in "${TESTS[@]}"; do measure "$r" "$s" "$t"; done
  done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.env"
for name in "${!SESS[@]}"; do
  kill -0 "${SESS[$name]}" 2> /dev/null || die "$name died during the run (log: $RUN/$name.log)"
done
for n in a b; do
  grep -E '^[WEF][0-9]{4} ' "$RUN/agent-$n.log" > "$RUN/agent-$n-warnings.txt" || true
  in_node "$n" curl -s "http://$ADMIN/metrics" > "$RUN/metrics-$n.txt" || true
done

# ---------------------------------------------------------------- report
"$PY" - "$RUN" "${SCEN[*]}" "${TESTS[*]}" > "$RUN/results.md" << 'EOF'
import os, re, statistics, sys
run, scen, tests = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
meta = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(run, "meta.env")) if "=" in l)
raw = os.path.join(run, "raw")
rounds = int(meta["rounds"])
NAMES = {"direct": "direct (plain TCP)", "nodemesh": "nodemesh (HBONE mTLS)",
         "haproxy-http": "HAProxy mTLS, mode http", "haproxy-tcp": "HAProxy mTLS, mode tcp"}
BODY = {"k1": 1024, "m1": 1048576}

def kv(path):
    try:
        txt = open(path).read()
    except OSError:
        return {}
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", txt)}

def tunnel(path):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    b = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", lines[0])}
    a = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", lines[1])}
    return {k: a[k] - b[k] for k in a if k in b}

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(x, nd=0):
    return "" if x is None else f"{x:,.{nd}f}"

def label(t):
    size, c = t.split("-")
    return ("1 KiB" if size == "k1" else "1 MiB"), "-" + c

def wedged(path):
    try:
        return "wedged_after=1" in open(path).read()
    except OSError:
        return False

res, per_round, bad_tunnel, wedges = {}, {}, [], []
for t in tests:
    for s in scen:
        v = dict(rps=[], p50=[], p99=[], a=[], b=[], x_direct=[], x_hap=[], x_hapt=[], errs=0, non2xx=0)
        for r in range(1, rounds + 1):
            w = kv(os.path.join(raw, f"r{r}__{s}__{t}.txt"))
            if "rps" not in w:
                continue
            v["rps"].append(w["rps"]); v["p50"].append(w["p50_us"]); v["p99"].append(w["p99_us"])
            v["errs"] += int(w["errors"]); v["non2xx"] += int(w["non2xx"])
            per_round[(s, t, r)] = w["rps"]
            for key, other in (("x_direct", "direct"), ("x_hap", "haproxy-http"), ("x_hapt", "haproxy-tcp")):
                o = kv(os.path.join(raw, f"r{r}__{other}__{t}.txt"))
                if o.get("rps"):
                    v[key].append(w["rps"] / o["rps"])
            c = kv(os.path.join(raw, f"r{r}__{s}__{t}.cpu"))
            if c and w["requests"]:
                v["a"].append(c["a_ns"] / 1e3 / w["requests"]); v["b"].append(c["b_ns"] / 1e3 / w["requests"])
            if wedged(os.path.join(raw, f"r{r}__{s}__{t}.tunnel")):
                wedges.append(f"r{r} {t}")
            tn = tunnel(os.path.join(raw, f"r{r}__{s}__{t}.tunnel"))
            if tn is not None:
                # The tunnel's bytes (A's counter, both directions) must cover
                # every body wrk received.
                need = w["requests"] * BODY[t.split("-")[0]]
                if tn["a_bytes"] < need or tn["b_bytes"] < need:
                    bad_tunnel.append(f"r{r} {t}: tunnel bytes A {tn['a_bytes']:.0f} B {tn['b_bytes']:.0f} < {need:.0f}")
        res[(s, t)] = {k: (med(x) if isinstance(x, list) else x) for k, x in v.items()}

print(f"# nodemesh cross-node benchmark, {meta['stamp']}")
print()
print(f"Kernel {meta['kernel']}, {meta['nproc']} CPUs ({meta['cpu_model']}); nginx {meta['nginx']}, "
      f"HAProxy {meta['haproxy']} (TLS 1.3 {meta['haproxy_cipher']}), wrk {meta['wrk']}, OpenSSL "
      f"{meta['openssl']}; agent {meta['agent_bin']}, tree {meta['tree']}. wrk -t1, HTTP/1.1 keep-alive, "
      f"{rounds} interleaved rounds of {meta['dur']} s per test (each after a 1 s warm-up at 1 KiB "
      f"-c{meta['conns']}), medians; ratios are medians of per-round ratios. Client (wrk, node A) on CPU {meta['client_cpu']}; nginx on CPU {meta['server_cpu']}; "
      f"both agents (--workers={meta['agent_workers']}) and both HAProxies (nbthread "
      f"{meta['haproxy_threads']}) on CPU {meta['proxy_cpu']}; nice {meta['nice']}. Load average at start "
      f"{meta['load_start']}, at end {meta.get('load_end', '?')}; CPU busy in the 2 s before the run: "
      f"{meta['busy_before_pct']}%.")
print()
print("| body | wrk | path | req/s | MB/s | p50 µs | p99 µs | x direct | x HAProxy http | x HAProxy tcp "
      "| CPU µs/req A | CPU µs/req B | CPU µs/req A+B | errors | non-2xx |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in tests:
    body, c = label(t)
    for s in scen:
        v = res[(s, t)]
        mbs = v["rps"] * BODY[t.split("-")[0]] / 1e6 if v["rps"] else None
        tot = v["a"] + v["b"] if v["a"] is not None else None
        print(f"| {body} | {c} | {NAMES[s]} | {fmt(v['rps'])} | {fmt(mbs, 1)} | {fmt(v['p50'])} | "
              f"{fmt(v['p99'])} | {fmt(v['x_direct'], 2)} | {fmt(v['x_hap'], 2)} | {fmt(v['x_hapt'], 2)} | "
              f"{fmt(v['a'], 1)} | {fmt(v['b'], 1)} | {fmt(tot, 1)} | {v['errs']} | {v['non2xx']} |")
print()
print("CPU µs/req: run time (schedstat, all threads) of the proxy process on node A and on node B "
      "(nodemesh: the two agents; HAProxy: the two HAProxies) over the wrk run, over requests served. "
      "MB/s = req/s x body (10^6 bytes).")
print()
print(f"Per-round req/s (rounds 1–{rounds}):")
print()
print("| body | wrk | path | " + " | ".join(f"r{r}" for r in range(1, rounds + 1)) + " |")
print("|---|---|---|" + "---:|" * rounds)
for t in tests:
    body, c = label(t)
    for s in scen:
        print(f"| {body} | {c} | {NAMES[s]} | " +
              " | ".join(fmt(per_round.get((s, t, r))) for r in range(1, rounds + 1)) + " |")
print()
print(f"Exact-count check before the rounds (h2load --h1 -c{meta['conns']} -n {meta['check_n']}, 1 KiB):")
print()
print("| path | succeeded | 2xx | nginx on B counted | tunnel streams A out / B in | tunnel bytes A |")
print("|---|---:|---:|---:|---:|---:|")
for s in scen:
    p = os.path.join(raw, f"check__{s}.txt")
    txt = open(p).read() if os.path.exists(p) else ""
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", txt)
    st = re.search(r"status codes: (\d+) 2xx", txt)
    sv = re.search(r"server_requests=(-?\d+)", txt)
    tn = tunnel(os.path.join(raw, f"check__{s}.tunnel"))
    tcol = f"{tn['a_streams_out']:.0f} / {tn['b_streams_in']:.0f}" if tn else ""
    bcol = f"{tn['a_bytes']:,.0f}" if tn else ""
    print(f"| {NAMES[s]} | {ok.group(1) if ok else '?'} | {st.group(1) if st else '?'} | "
          f"{sv.group(1) if sv else '?'} | {tcol} | {bcol} |")
print()
tot = {}
for n in ("a", "b"):
    try:
        for l in open(os.path.join(run, f"metrics-{n}.txt")):
            m = re.match(r"(nodemesh_tunnel_(?:connections|streams|bytes)_total)\{direction=\"(\w+)\"\} ([0-9.e+]+)", l)
            if m:
                tot[f"{n.upper()} {m.group(1).replace('nodemesh_', '')} {m.group(2)}"] = float(m.group(3))
    except OSError:
        pass
if tot:
    print("Tunnel counters at the end (the last agents' lifetime: with NM_FRESH=1 the last nodemesh test): " +
          ", ".join(f"{k} {v:,.0f}" for k, v in tot.items()) + ".")
    print()
print(f"Tunnel wedged after a nodemesh test (no answer to one 1 KiB request within 2 s): "
      f"{len(wedges)} of {rounds * len(tests)} tests" + (": " + ", ".join(wedges) if wedges else "") + ". "
      + ("Both agents were restarted before every nodemesh test (NM_FRESH=1)." if meta["nm_fresh"] == "1"
         else "Agents restarted only after a wedge (NM_FRESH=0)."))
print()
print("Tunnel bytes ≥ bodies received in every nodemesh wrk run: " +
      ("yes." if not bad_tunnel else "NO: " + "; ".join(bad_tunnel)))
print()
for n in ("a", "b"):
    warn = open(os.path.join(run, f"agent-{n}-warnings.txt")).read().splitlines()
    print(f"Agent {n.upper()} log: {len(warn)} warning/error lines" + (":" if warn else "."))
    for l in warn[:10]:
        print("    " + l)
EOF
cat "$RUN/results.md"
log "done; results $RUN/results.md (raw outputs, logs, configs and PKI under $RUN)"

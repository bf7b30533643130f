#!/usr/bin/env bash
# run.sh — HTTP/2 and gRPC through the node proxy against HAProxy and nginx,
# in one run, in a private network namespace (see bench/h2/README.md).
#
# h2load -c$CONNS -m$STREAMS (h2c prior knowledge) on one of three backends:
#   h2         nginx, h2c, `return 200` of a fixed body
#   grpc-stub  nginx, h2c, a fixed gRPC unary answer (a length-prefixed
#              message from a file, grpc-status 0 in trailers): a gRPC server
#              fast enough that the proxy, not the server, is measured
#   grpc       tests/integration/grpc_peer.py (python3-grpcio), demo.Echo/Unary
# each reached four ways (grpc: two):
#   direct     h2load dials the backend
#   nodemesh   a VirtualGateway listener (http2 or grpc) -> gateway route ->
#              virtual service -> virtual node with an http2/grpc listener
#              (HTTP/2 upstream, multiplexed)
#   haproxy    frontend `proto h2`, backend server `proto h2`
#   nginx      http2 listener; h2: proxy_pass over HTTP/1.1 keep-alive (nginx
#              cannot proxy_pass over HTTP/2); gRPC: grpc_pass grpc:// (HTTP/2,
#              one stream per upstream connection)
#
#   sudo bench/h2/run.sh                      # about 6 minutes
#   sudo ROUNDS=2 DUR=3 bench/h2/run.sh       # quick look
#
# Env knobs: ROUNDS=5 DUR=5 (s per h2load run) CONNS=16 STREAMS=10 WARMUP=1
# (s, h2load --warm-up-time) CHECK_N=20000 (requests of the exact-count check)
# BODY_BYTES=1024 NICE=0 CLIENT_CPU=1 SERVER_CPU=0 PROXY_CPU=0 PIN=1
# AGENT_WORKERS=1 AGENT_EXTRA_FLAGS AGENT_BIN OUT_DIR=/tmp/nodemesh-bench-h2
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
AGENT_BIN=${AGENT_BIN:-$REPO/build/agent/nodemesh-agent}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-10}
WARMUP=${WARMUP:-1}
CHECK_N=${CHECK_N:-20000}
BODY_BYTES=${BODY_BYTES:-1024}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVER_CPU=${SERVER_CPU:-0}
PROXY_CPU=${PROXY_CPU:-0}
PIN=${PIN:-1}
NICE=${NICE:-0}
AGENT_WORKERS=${AGENT_WORKERS:-1}
AGENT_EXTRA_FLAGS=${AGENT_EXTRA_FLAGS:-}
OUT_DIR=${OUT_DIR:-/tmp/nodemesh-bench-h2}
STAMP=$(date +%Y%m%d-%H%M%S)
PY=/usr/bin/python3
PEER=$REPO/tests/integration/grpc_peer.py

# Addresses inside the benchmark's network namespace (127/8 only).
WEB=127.0.0.11:8080      # nginx h2c, fixed body
WEB_H1=127.0.0.11:8081   # the same nginx over HTTP/1.1 (nginx proxy's upstream)
ECHO=127.0.0.12:9090     # grpc_peer.py serve, demo.Echo
STUB=127.0.0.13:9091     # nginx h2c, fixed gRPC answer
ADMIN=127.0.0.1:15000
NM_H2=10080 NM_STUB=10091 NM_GRPC=10090      # nodemesh VirtualGateway listeners
HAP_H2=11080 HAP_STUB=11091 HAP_GRPC=11090   # HAProxy frontends
NGX_H2=12080 NGX_STUB=12091 NGX_GRPC=12090   # nginx proxy servers
GRPC_PATH=/demo.Echo/Unary

exec 9>&2
log() { printf '[%(%H:%M:%S)T] h2: %s\n' -1 "$*" >&9; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- checks
[[ $(id -u) == 0 ]] || die "run as root (BPF, cgroups, network namespaces)"
for t in nginx haproxy h2load nghttp nsenter taskset curl ip setsid; do
  command -v "$t" > /dev/null || die "$t is missing (scripts/install-deps installs it)"
done
[[ -x $PY ]] || die "no $PY"
"$PY" -c 'import grpc' 2> /dev/null || die "no python3-grpcio for $PY (scripts/install-deps installs it)"
for _ in $(seq 1 60); do [[ -x $AGENT_BIN ]] && break; sleep 1; done # may be relinking
[[ -x $AGENT_BIN ]] || die "no $AGENT_BIN (build it: scripts/build, or set AGENT_BIN)"
NCPU=$(nproc)
for c in $CLIENT_CPU $SERVER_CPU $PROXY_CPU; do ((c < NCPU)) || die "CPU $c does not exist (nproc=$NCPU)"; done
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || die "no cgroup2 mount in /proc/mounts"
if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

# ---------------------------------------------------------------- names
# Everything this run creates carries its pid: parallel runs and an agent on
# the host are never touched.
ID=nm-h2-$$
NETNS=/var/run/netns/$ID
PIN_DIR=/sys/fs/bpf/$ID
CG_ROOT=$CG2/$ID
AGENT_CG=$CG2/$ID-agent
TMPD=/tmp/$ID
SOCK=$TMPD/agent.sock
RUN=$OUT_DIR/run-$STAMP-$$
CONF=$RUN/config
mkdir -p "$RUN/raw" "$CONF" "$TMPD/state"

in_ns() { nsenter --net="$NETNS" "$@"; }

# ---------------------------------------------------------------- cleanup
declare -A SESS=() # name -> pid (each started with setsid: pid == session id)
CLIENT_PID=
NETNS_MADE=0
AGENT_STARTED=0

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

cleanup() {
  local rc=$? name
  trap - EXIT INT TERM
  if [[ -n $CLIENT_PID ]]; then stop_session "$CLIENT_PID"; fi
  for name in haproxy nginx-proxy backend echo; do
    if [[ -n ${SESS[$name]:-} ]]; then stop_session "${SESS[$name]}"; fi
  done
  if [[ -n ${SESS[agent]:-} ]]; then
    kill -TERM "${SESS[agent]}" 2> /dev/null || true
    for _ in $(seq 1 80); do kill -0 "${SESS[agent]}" 2> /dev/null || break; sleep 0.1; done
    stop_session "${SESS[agent]}"
  fi
  if ((AGENT_STARTED)); then
    # The agent leaves its datapath pinned on exit by design; remove it.
    if ! in_ns "$AGENT_BIN" --cleanup --bpf_pin_dir="$PIN_DIR" --cgroup_root="$CG_ROOT" \
      --agent_cgroup="$AGENT_CG" --admin_socket="$SOCK" --state_dir="$TMPD/state" \
      --config_dir="$CONF" --logtostderr > "$RUN/cleanup.log" 2>&1; then
      log "warning: agent --cleanup failed (see $RUN/cleanup.log)"
    fi
  fi
  rm_cgroup_tree "$CG_ROOT"
  rm_cgroup_tree "$AGENT_CG"
  [[ -d $PIN_DIR ]] && { rm -rf "$PIN_DIR" 2> /dev/null || log "warning: $PIN_DIR left behind"; }
  ((NETNS_MADE)) && { ip netns del "$ID" 2> /dev/null || log "warning: netns $ID left behind"; }
  rm -rf "$TMPD"
  ((rc == 0)) || log "failed (status $rc); logs and raw outputs in $RUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_sess() { # name cpu cmd... (inside the netns, pinned, own session)
  local name=$1 cpu=$2
  shift 2
  local pfx=(nice -n "$NICE")
  [[ $PIN == 1 ]] && pfx+=(taskset -c "$cpu")
  setsid nsenter --net="$NETNS" "${pfx[@]}" "$@" > "$RUN/$name.log" 2>&1 < /dev/null 9>&- &
  SESS[$name]=$!
}

# Runs a client in the background and waits for it, so that a signal reaches
# the trap at once; its output goes to $1.
client() { # outfile cmd...
  local out=$1 rc=0
  shift
  local pfx=(nsenter --net="$NETNS" nice -n "$NICE")
  [[ $PIN == 1 ]] && pfx+=(taskset -c "$CLIENT_CPU")
  "${pfx[@]}" "$@" > "$out" 2>&1 < /dev/null 9>&- &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  return "$rc"
}

# ---------------------------------------------------------------- configs
nginx_common() { # dir
  local d=$1
  mkdir -p "$d"
  cat << EOF
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  default_type application/octet-stream;
  # Also HTTP/2's request limit per connection (http2_max_requests is gone):
  # at its default 1000 nginx sends GOAWAY and h2load counts the rest failed.
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  http2_max_concurrent_streams 1024;
  client_body_temp_path $d/tmp_body;
  proxy_temp_path $d/tmp_proxy;
  fastcgi_temp_path $d/tmp_fastcgi;
  uwsgi_temp_path $d/tmp_uwsgi;
  scgi_temp_path $d/tmp_scgi;
EOF
}

write_configs() {
  local body
  body=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x')
  # gRPC messages: 1 byte flag (0: not compressed), 4 bytes length (big
  # endian), the bytes. The stub's answer is a file served for POST (the
  # static module answers POST with 405; error_page turns that into the file).
  mkdir -p "$RUN/stub/demo.Echo"
  "$PY" - "$RUN" << 'EOF'
import struct, sys
def frame(m):
    return b"\0" + struct.pack(">I", len(m)) + m
open(sys.argv[1] + "/grpc-request.bin", "wb").write(frame(b"hello"))
open(sys.argv[1] + "/stub/demo.Echo/Unary", "wb").write(frame(b"stub:hello"))
EOF

  { nginx_common "$RUN/nginx-backend"
    cat << EOF
  server { listen $WEB http2 backlog=4096; location / { return 200 "$body"; } }
  server { listen $WEB_H1 backlog=4096; location / { return 200 "$body"; } }
  server {
    listen $STUB http2 backlog=4096;
    location / {
      root $RUN/stub;
      default_type application/grpc;
      add_trailer grpc-status 0 always;
      error_page 405 =200 \$uri;
    }
  }
}
EOF
  } > "$RUN/nginx-backend.conf"

  { nginx_common "$RUN/nginx-proxy"
    cat << EOF
  upstream web_h1 { server $WEB_H1; keepalive 1024; keepalive_requests 100000000; keepalive_timeout 600s; }
  upstream stub { server $STUB; keepalive 1024; keepalive_requests 100000000; keepalive_timeout 600s; }
  upstream echo { server $ECHO; keepalive 1024; keepalive_requests 100000000; keepalive_timeout 600s; }
  server {
    listen 127.0.0.1:$NGX_H2 http2 backlog=4096;
    location / { proxy_pass http://web_h1; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server { listen 127.0.0.1:$NGX_STUB http2 backlog=4096; location / { grpc_pass grpc://stub; } }
  server { listen 127.0.0.1:$NGX_GRPC http2 backlog=4096; location / { grpc_pass grpc://echo; } }
}
EOF
  } > "$RUN/nginx-proxy.conf"
  local n
  for n in backend proxy; do
    nginx -t -q -p "$RUN/nginx-$n" -e "$RUN/nginx-$n/error.log" -c "$RUN/nginx-$n.conf" ||
      die "nginx-$n config invalid"
  done

  # One thread like the agent's one worker; HTTP/2 on both sides, upstream
  # connections shared by all clients' streams (http-reuse always).
  cat > "$RUN/haproxy.cfg" << EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend h2
  bind 127.0.0.1:$HAP_H2 proto h2
  default_backend web
frontend stub
  bind 127.0.0.1:$HAP_STUB proto h2
  default_backend stub
frontend grpc
  bind 127.0.0.1:$HAP_GRPC proto h2
  default_backend echo
backend web
  server web1 $WEB proto h2
backend stub
  server stub1 $STUB proto h2
backend echo
  server echo1 $ECHO proto h2
EOF
  haproxy -c -q -f "$RUN/haproxy.cfg" || die "haproxy config invalid"

  # App Mesh model, one array: a VirtualGateway per backend (a gateway has
  # one listener), each routing everything to a virtual service on a virtual
  # node whose listener protocol makes the upstream side HTTP/2.
  "$PY" - "$CONF/bench.json" "$WEB" "$STUB" "$ECHO" "$NM_H2" "$NM_STUB" "$NM_GRPC" << 'EOF'
import json, sys
out, web, stub, echo = sys.argv[1:5]
nm_h2, nm_stub, nm_grpc = map(int, sys.argv[5:8])
m = [{"meshName": "bench", "spec": {}}]
for name, addr, proto, gw_port in (("web", web, "http2", nm_h2), ("stub", stub, "grpc", nm_stub),
                                   ("echo", echo, "grpc", nm_grpc)):
    host, port = addr.split(":")
    vs = name + ".bench.local"
    m.append({"meshName": "bench", "virtualNodeName": name, "spec": {
        "listeners": [{"portMapping": {"port": int(port), "protocol": proto}}],
        "serviceDiscovery": {"dns": {"hostname": host}}}})
    m.append({"meshName": "bench", "virtualServiceName": vs,
              "spec": {"provider": {"virtualNode": {"virtualNodeName": name}}}})
    m.append({"meshName": "bench", "virtualGatewayName": "gw-" + name, "spec": {
        "listeners": [{"portMapping": {"port": gw_port, "protocol": proto}}]}})
    target = {"target": {"virtualService": {"virtualServiceName": vs}}}
    route = ({"http2Route": {"match": {"prefix": "/"}, "action": target}} if proto == "http2" else
             {"grpcRoute": {"match": {"serviceName": "demo.Echo"}, "action": target}})
    m.append({"meshName": "bench", "virtualGatewayName": "gw-" + name,
              "gatewayRouteName": "all", "spec": route})
json.dump(m, open(out, "w"), indent=1)
EOF
}

# ---------------------------------------------------------------- scenarios
# name -> URL; the backend kind is the name's prefix.
declare -A URL=(
  [h2:direct]="http://$WEB/"
  [h2:nodemesh]="http://127.0.0.1:$NM_H2/"
  [h2:haproxy]="http://127.0.0.1:$HAP_H2/"
  [h2:nginx]="http://127.0.0.1:$NGX_H2/"
  [grpc-stub:direct]="http://$STUB$GRPC_PATH"
  [grpc-stub:nodemesh]="http://127.0.0.1:$NM_STUB$GRPC_PATH"
  [grpc-stub:haproxy]="http://127.0.0.1:$HAP_STUB$GRPC_PATH"
  [grpc-stub:nginx]="http://127.0.0.1:$NGX_STUB$GRPC_PATH"
  [grpc:direct]="http://$ECHO$GRPC_PATH"
  [grpc:nodemesh]="http://127.0.0.1:$NM_GRPC$GRPC_PATH"
)
SCEN=(h2:direct h2:nodemesh h2:haproxy h2:nginx
  grpc-stub:direct grpc-stub:nodemesh grpc-stub:haproxy grpc-stub:nginx
  grpc:direct grpc:nodemesh)

h2load_args() { # scenario -> words in ARGS (all but the URL and the run length)
  ARGS=(h2load -t1 -c"$CONNS" -m"$STREAMS")
  case $1 in
    grpc*) ARGS+=(-d "$RUN/grpc-request.bin" -H 'content-type: application/grpc' -H 'te: trailers') ;;
  esac
}

proxy_sess() { # scenario -> session id of the proxy on its path ('' when none)
  case ${1#*:} in
    nodemesh) echo "${SESS[agent]}" ;;
    haproxy) echo "${SESS[haproxy]}" ;;
    nginx) echo "${SESS[nginx-proxy]}" ;;
    *) echo "" ;;
  esac
}

# Run time in ns (schedstat) of every thread of every process in a session:
# nginx's worker is a child of its master.
sess_cpu_ns() {
  local p
  for p in $(ps -o pid= -s "$1" 2> /dev/null); do cat /proc/"$p"/task/*/schedstat 2> /dev/null; done |
    awk '{ s += $1 } END { printf "%.0f\n", s }'
}

measure() { # round scenario
  local base="$RUN/raw/r$1__${2/:/__}" scen=$2 ps n0 n1
  h2load_args "$scen"
  ps=$(proxy_sess "$scen")
  [[ -n $ps ]] && n0=$(sess_cpu_ns "$ps")
  client "$base.txt" "${ARGS[@]}" -D "$DUR" --warm-up-time="$WARMUP" "${URL[$scen]}" ||
    log "warning: h2load failed (see $base.txt)"
  if [[ -n $ps ]]; then
    n1=$(sess_cpu_ns "$ps")
    echo "proxy_ns=$((n1 - n0))" > "$base.cpu"
  fi
}

echo_calls() { # calls the grpcio server has answered
  in_ns "$PY" "$PEER" call --target "$ECHO" --method Stats | sed -n 's/^msg //p' |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["calls"])'
}

# ---------------------------------------------------------------- setup
write_configs
ip netns add "$ID"
NETNS_MADE=1
ip -n "$ID" link set lo up

log "starting nodemesh-agent in netns $ID (pins $PIN_DIR, cgroups $CG_ROOT, $AGENT_CG)"
# shellcheck disable=SC2206  # AGENT_EXTRA_FLAGS is meant to be word-split
extra=($AGENT_EXTRA_FLAGS)
AGENT_STARTED=1
start_sess agent "$PROXY_CPU" "$AGENT_BIN" --config_dir="$CONF" --bpf_pin_dir="$PIN_DIR" \
  --cgroup_root="$CG_ROOT" --agent_cgroup="$AGENT_CG" --admin_socket="$SOCK" --state_dir="$TMPD/state" \
  --admin_address="$ADMIN" --gateway_address=127.0.0.1 --api_auth=none --workers="$AGENT_WORKERS" \
  --drain_seconds=1 --logtostderr "${extra[@]}"
for _ in $(seq 1 150); do
  in_ns curl -sf -o /dev/null --max-time 1 "http://$ADMIN/ready" && break
  kill -0 "${SESS[agent]}" 2> /dev/null || { tail -20 "$RUN/agent.log" >&2; die "agent exited"; }
  sleep 0.1
done
in_ns curl -sf -o /dev/null "http://$ADMIN/ready" || { tail -20 "$RUN/agent.log" >&2; die "agent not ready in 15 s"; }

log "starting backends (nginx $WEB $STUB, grpc_peer.py $ECHO) and peers (HAProxy, nginx)"
start_sess backend "$SERVER_CPU" nginx -p "$RUN/nginx-backend" -e "$RUN/nginx-backend/error.log" \
  -c "$RUN/nginx-backend.conf"
start_sess echo "$SERVER_CPU" "$PY" "$PEER" serve --host "${ECHO%:*}" --name echo --port "${ECHO#*:}"
start_sess haproxy "$PROXY_CPU" haproxy -db -f "$RUN/haproxy.cfg"
start_sess nginx-proxy "$PROXY_CPU" nginx -p "$RUN/nginx-proxy" -e "$RUN/nginx-proxy/error.log" \
  -c "$RUN/nginx-proxy.conf"
for _ in $(seq 1 100); do grep -q '^ready' "$RUN/echo.log" 2> /dev/null && break; sleep 0.1; done
grep -q '^ready' "$RUN/echo.log" || die "grpc_peer.py did not start (see $RUN/echo.log)"

# ---------------------------------------------------------------- path checks
# Every path answers what the backend answers: the full body over h2c, the
# echo (or the stub's message) with status OK over gRPC through grpcio's own
# client. Then an exact count: CHECK_N requests through each path must all
# succeed, and the grpcio server must have seen each nodemesh request once.
log "checking each path"
for s in "${SCEN[@]}"; do
  ok=0
  for _ in $(seq 1 50); do
    case $s in
      h2:*)
        out=$(in_ns nghttp "${URL[$s]}" 2> /dev/null | wc -c) || true
        [[ $out == "$BODY_BYTES" ]] && { ok=1; break; } ;;
      grpc*)
        u=${URL[$s]#http://}
        out=$(in_ns "$PY" "$PEER" call --target "${u%%/*}" --data hello --timeout 2 2> /dev/null) || true
        [[ $out == *"hello"*"status OK"* ]] && { ok=1; break; } ;;
    esac
    sleep 0.2
  done
  if ((!ok)); then
    # Go on (the rounds count the errors); keep one exchange frame by frame.
    h2load_args "$s"
    in_ns nghttp -v -n "${ARGS[@]:4}" "${URL[$s]}" > "$RUN/raw/check-fail__${s/:/__}.txt" 2>&1 || true
    log "warning: $s: no correct answer from ${URL[$s]} (last: $out); nghttp -v in raw/check-fail__${s/:/__}.txt"
  fi
done

for s in "${SCEN[@]}"; do
  h2load_args "$s"
  base="$RUN/raw/check__${s/:/__}"
  [[ $s == grpc:* ]] && c0=$(echo_calls)
  client "$base.txt" "${ARGS[@]}" -n "$CHECK_N" "${URL[$s]}" || log "warning: h2load failed (see $base.txt)"
  if [[ $s == grpc:* ]]; then
    c1=$(echo_calls)
    echo "server_calls=$((c1 - c0))" >> "$base.txt" # Stats does not count itself
  fi
  grep -q "requests: $CHECK_N total, $CHECK_N started, $CHECK_N done, $CHECK_N succeeded" "$base.txt" ||
    log "warning: $s: not all of $CHECK_N requests succeeded: $(grep -E '^requests:' "$base.txt")"
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
streams=$STREAMS
check_n=$CHECK_N
body_bytes=$BODY_BYTES
pin=$PIN
client_cpu=$CLIENT_CPU
server_cpu=$SERVER_CPU
proxy_cpu=$PROXY_CPU
nice=$NICE
agent_workers=$AGENT_WORKERS
agent_extra_flags=$AGENT_EXTRA_FLAGS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before_pct=$(busy_pct)
kernel=$(uname -r)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
nproc=$NCPU
nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')
haproxy=$(haproxy -v | head -1 | awk '{print $3}')
h2load=$(h2load --version | awk '{print $2}')
grpcio=$("$PY" -c 'import grpc; print(grpc.__version__)')
EOF

# Interleaved rounds, order rotated each round, so that every scenario sees
# the same noise from the machine's neighbours.
n=${#SCEN[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < n; i++)); do
    s=${SCEN[$(((i + r - 1) % n))]}
    log "round $r/$ROUNDS: $s (h2load -c$CONNS -m$STREAMS, ${WARMUP}s + ${DUR}s)"
    measure "$r" "$s"
  done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.env"
for name in "${!SESS[@]}"; do
  kill -0 "${SESS[$name]}" 2> /dev/null || die "$name died during the run (log: $RUN/$name.log)"
done
# The agent's warnings and errors (glog W/E lines) and its counters, for the
# report: how many upstream connections carried how many requests.
grep -E '^[WEF][0-9]{4} ' "$RUN/agent.log" > "$RUN/agent-warnings.txt" || true
in_ns curl -s "http://$ADMIN/metrics" > "$RUN/agent-metrics.txt" || true

# ---------------------------------------------------------------- report
"$PY" - "$RUN" "${SCEN[@]}" > "$RUN/results.md" << 'EOF'
import os, re, statistics, sys
run, scen = sys.argv[1], sys.argv[2:]
meta = dict(l.strip().split("=", 1) for l in open(os.path.join(run, "meta.env")) if "=" in l)
raw = os.path.join(run, "raw")
BACKEND = {"h2": f"h2c nginx, {int(meta['body_bytes']):,} B body",
           "grpc-stub": "gRPC unary, nginx stub", "grpc": "gRPC unary, grpcio server"}
PATH = {"direct": "direct", "nodemesh": "nodemesh (VirtualGateway)",
        "haproxy": "HAProxy (h2 both sides)", "nginx": "nginx"}
NGINX = {"h2": "nginx (h2 -> HTTP/1.1 upstream)", "grpc-stub": "nginx (grpc_pass)",
         "grpc": "nginx (grpc_pass)"}

def h2load(path):
    try:
        txt = open(path).read()
    except OSError:
        return None
    fin = re.search(r"finished in ([0-9.]+)(ms|s), ([0-9.]+) req/s", txt)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", txt)
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", txt)
    if not fin or not req:
        return None
    r = dict(rps=float(fin.group(3)), done=int(req.group(3)), ok=int(req.group(4)),
             failed=int(req.group(5)), errored=int(req.group(6)), timeout=int(req.group(7)),
             non2xx=sum(int(x) for x in st.groups()[1:]) if st else 0)
    sc = re.search(r"server_calls=(-?\d+)", txt)
    if sc:
        r["server_calls"] = int(sc.group(1))
    return r

def cpu(path):
    try:
        return int(re.search(r"proxy_ns=(\d+)", open(path).read()).group(1))
    except (OSError, AttributeError):
        return None

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(x, nd=0):
    return "" if x is None else f"{x:,.{nd}f}"

rounds = int(meta["rounds"])
res = {}
for s in scen:
    rps, ratio, cpus, bad = [], [], [], 0
    for r in range(1, rounds + 1):
        w = h2load(os.path.join(raw, f"r{r}__{s.replace(':', '__')}.txt"))
        if not w:
            continue
        rps.append(w["rps"])
        bad += w["failed"] + w["errored"] + w["timeout"] + w["non2xx"]
        d = h2load(os.path.join(raw, f"r{r}__{s.split(':')[0]}__direct.txt"))
        if d and d["rps"]:
            ratio.append(w["rps"] / d["rps"])
        c = cpu(os.path.join(raw, f"r{r}__{s.replace(':', '__')}.cpu"))
        if c is not None and w["done"]:
            cpus.append(c / 1e3 / w["done"])
    res[s] = dict(rps=med(rps), ratio=med(ratio), cpu=med(cpus), bad=bad, n=len(rps))

def vs_haproxy(kind):
    xs = []
    for r in range(1, rounds + 1):
        a = h2load(os.path.join(raw, f"r{r}__{kind}__nodemesh.txt"))
        b = h2load(os.path.join(raw, f"r{r}__{kind}__haproxy.txt"))
        if a and b and b["rps"]:
            xs.append(a["rps"] / b["rps"])
    return med(xs), (min(xs) if xs else None), (max(xs) if xs else None)

print(f"# nodemesh HTTP/2 and gRPC benchmark, {meta['stamp']}")
print()
print(f"Kernel {meta['kernel']}, {meta['nproc']} CPUs ({meta['cpu_model']}); nginx {meta['nginx']}, "
      f"HAProxy {meta['haproxy']}, h2load {meta['h2load']}, grpcio {meta['grpcio']}. "
      f"h2load -t1 -c{meta['conns']} -m{meta['streams']}, {meta['rounds']} interleaved rounds of "
      f"{meta['dur']} s (after {meta['warmup']} s warm-up), medians; x direct is the median of "
      f"per-round ratios to the same backend reached directly. Client on CPU {meta['client_cpu']}, "
      f"backends on CPU {meta['server_cpu']}, agent (--workers={meta['agent_workers']}), HAProxy "
      f"(nbthread 1) and nginx (1 worker) on CPU {meta['proxy_cpu']}; nice {meta['nice']}. "
      f"Load average at start {meta['load_start']}, at end {meta.get('load_end', '?')}; CPU busy in "
      f"the 2 s before the run: {meta['busy_before_pct']}%.")
print()
print("| backend | path | req/s | x direct | proxy CPU µs/req | failed+errored+non-2xx |")
print("|---|---|---:|---:|---:|---:|")
for s in scen:
    kind, path = s.split(":")
    v = res[s]
    name = NGINX[kind] if path == "nginx" else PATH[path]
    print(f"| {BACKEND[kind]} | {name} | {fmt(v['rps'])} | {fmt(v['ratio'], 2)} | {fmt(v['cpu'], 1)} | {v['bad']} |")
print()
for kind in ("h2", "grpc-stub"):
    m, lo, hi = vs_haproxy(kind)
    if m is not None:
        print(f"- {BACKEND[kind]}: nodemesh / HAProxy req/s = **{m:.2f}x** (median of per-round "
              f"ratios, range {lo:.2f}–{hi:.2f}; goal ≥ 1.2x)")
print()
print(f"Exact-count check before the rounds (h2load -n {meta['check_n']}):")
print()
print("| backend | path | succeeded | failed | errored | non-2xx | server saw |")
print("|---|---|---:|---:|---:|---:|---:|")
for s in scen:
    kind, path = s.split(":")
    w = h2load(os.path.join(raw, f"check__{s.replace(':', '__')}.txt"))
    if not w:
        print(f"| {BACKEND[kind]} | {path} | (h2load failed) | | | | |")
        continue
    print(f"| {BACKEND[kind]} | {path} | {w['ok']:,} | {w['failed']} | {w['errored']} | {w['non2xx']} | "
          f"{w.get('server_calls', '')} |")
print()
metrics = {}
for l in open(os.path.join(run, "agent-metrics.txt")):
    m = re.match(r"(nodemesh_(?:upstream_connections_total|upstream_requests_total|"
                 r"downstream_connections_total|downstream_requests_total|retries_total)) ([0-9.e+]+)", l)
    if m:
        metrics[m.group(1)] = float(m.group(2))
if metrics:
    print("Agent counters over the whole run (checks, warm-ups and rounds): " + ", ".join(
        f"{k.replace('nodemesh_', '')} {v:,.0f}" for k, v in sorted(metrics.items())) + ".")
    print()
warn = open(os.path.join(run, "agent-warnings.txt")).read().splitlines()
print(f"Agent log: {len(warn)} warning/error lines" + (":" if warn else "."))
for l in warn[:10]:
    print("    " + l)
EOF
cat "$RUN/results.md"
log "done; results $RUN/results.md (raw outputs, logs and configs under $RUN)"

#!/usr/bin/env bash
# run.sh — end-to-end benchmark: a same-node client calling a 1 KiB HTTP/1.1
# service four ways, interleaved in one run (see bench/e2e/README.md):
#   direct     the client dials the server's address (no mesh)
#   nm-l7      nodemesh L7: a workload dials product.shop.local:8080 (mesh DNS,
#              BPF connect4 -> the agent's proxy -> the server)
#   nm-direct  nodemesh DIRECT: a workload dials inventory.shop.local:7000, a
#              tcp-listener virtual service; BPF rewrites connect() straight to
#              the endpoint, no proxy on the path
#   haproxy    a sidecar the way Istio places one: iptables -t nat OUTPUT
#              REDIRECT of the client's traffic to the service address into
#              HAProxy's local port (HAProxy's own uid excluded), HAProxy
#              forwarding to the server
# then a fixed-rate phase (h2load --rps, ~1,000 req/s) that measures the CPU
# and RSS of the agent (L7 and DIRECT) and of the HAProxy sidecar.
#
#   sudo bench/e2e/run.sh                          # about 4 minutes
#   sudo ROUNDS=2 DUR=3 LAT_DUR=2 bench/e2e/run.sh # quick look
#
# Env knobs: ROUNDS=5 DUR=5 (s, wrk -c$CONNS) LAT_DUR=3 (s, wrk -c1) CONNS=16
# WARMUP=2 NICE=0 (nice level of servers, proxies and clients; e.g. -10 on a
# box shared with builds) RATE=1000 (req/s of the fixed-rate phase) RATE_CONNS=16 RATE_DUR=15
# CLIENT_CPU=1 SERVER_CPU=0 PROXY_CPU=0 PIN=1 AGENT_WORKERS=1 AGENT_EXTRA_FLAGS
# AGENT_BIN CTL_BIN OUT_DIR=/tmp/nodemesh-bench-e2e
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
AGENT_BIN=${AGENT_BIN:-$REPO/build/agent/nodemesh-agent}
CTL_BIN=${CTL_BIN:-$REPO/build/ctl/nodemeshctl}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
LAT_DUR=${LAT_DUR:-3}
CONNS=${CONNS:-16}
WARMUP=${WARMUP:-2}
RATE=${RATE:-1000}
RATE_CONNS=${RATE_CONNS:-16}
RATE_DUR=${RATE_DUR:-15}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVER_CPU=${SERVER_CPU:-0}
PROXY_CPU=${PROXY_CPU:-0}
PIN=${PIN:-1}
NICE=${NICE:-0}
AGENT_WORKERS=${AGENT_WORKERS:-1}
AGENT_EXTRA_FLAGS=${AGENT_EXTRA_FLAGS:-}
OUT_DIR=${OUT_DIR:-/tmp/nodemesh-bench-e2e}
BODY_BYTES=1024
STAMP=$(date +%Y%m%d-%H%M%S)
PY=/usr/bin/python3

# Addresses inside the benchmark's network namespace.
PRODUCT_ADDR=127.0.0.11   # the product workload (nginx), http :8080
INVENTORY_ADDR=127.0.0.12 # the inventory workload (nginx), tcp :7000
SERVICE_ADDR=198.18.0.10  # the "ClusterIP" the sidecar client dials (nothing listens there)
HAPROXY_PORT=15101        # the sidecar's outbound port, REDIRECT target
ADMIN=127.0.0.1:15000

exec 9>&2
log() { printf '[%(%H:%M:%S)T] e2e: %s\n' -1 "$*" >&9; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- checks
[[ $(id -u) == 0 ]] || die "run as root (BPF, cgroups, network namespaces, iptables)"
for t in nginx haproxy wrk h2load iptables nsenter taskset curl ip setsid getconf; do
  command -v "$t" > /dev/null || die "$t is missing (scripts/install-deps installs it)"
done
[[ -x $PY ]] || die "no $PY"
for b in "$AGENT_BIN" "$CTL_BIN"; do
  for _ in $(seq 1 60); do [[ -x $b ]] && break; sleep 1; done  # may be relinking
  [[ -x $b ]] || die "no $b (build it: scripts/build, or set AGENT_BIN / CTL_BIN)"
done
id haproxy > /dev/null 2>&1 || die "no haproxy user (the Debian haproxy package creates it)"
NCPU=$(nproc)
for c in $CLIENT_CPU $SERVER_CPU $PROXY_CPU; do ((c < NCPU)) || die "CPU $c does not exist (nproc=$NCPU)"; done
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || die "no cgroup2 mount in /proc/mounts"
[[ -r /sys/kernel/btf/vmlinux ]] || die "no kernel BTF (/sys/kernel/btf/vmlinux)"
if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- names
# Everything this run creates carries its pid, so parallel runs and a
# production agent on the host are never touched.
ID=nm-e2e-$$
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
pin() { # cpu cmd...: pinned with taskset when PIN=1
  local cpu=$1
  shift
  if [[ $PIN == 1 ]]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

# ---------------------------------------------------------------- cleanup
declare -A SESS=()  # name -> pid (each started with setsid: pid == session id)
CLIENT_PID=
NETNS_MADE=0
AGENT_STARTED=0

stop_session() { # pid
  local i
  kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || return 0
  for i in $(seq 1 40); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

rm_cgroup_tree() { # dir: kill what is left in it, remove leaves first
  local d=$1 c i
  [[ -d $d ]] || return 0
  [[ -e $d/cgroup.kill ]] && echo 1 > "$d/cgroup.kill" 2>/dev/null || true
  for i in $(seq 1 30); do
    grep -q 'populated 0' "$d/cgroup.events" 2>/dev/null && break
    sleep 0.1
  done
  while read -r c; do rmdir "$c" 2>/dev/null || true; done < <(find "$d" -depth -type d)
  [[ -d $d ]] && log "warning: could not remove cgroup $d"
  return 0
}

cleanup() {
  local rc=$? name
  trap - EXIT INT TERM
  if [[ -n $CLIENT_PID ]]; then stop_session "$CLIENT_PID"; fi
  for name in haproxy server-product server-inventory; do
    if [[ -n ${SESS[$name]:-} ]]; then stop_session "${SESS[$name]}"; fi
  done
  if [[ -n ${SESS[agent]:-} ]]; then
    kill -TERM "${SESS[agent]}" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "${SESS[agent]}" 2>/dev/null || break; sleep 0.1; done
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
  [[ -d $PIN_DIR ]] && { rm -rf "$PIN_DIR" 2>/dev/null || log "warning: $PIN_DIR left behind"; }
  ((NETNS_MADE)) && { ip netns del "$ID" 2>/dev/null || log "warning: netns $ID left behind"; }
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
  "$@" > "$out" 2>&1 < /dev/null 9>&- &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  return "$rc"
}

wait_http() { # url timeout_s [cmd prefix...]: until a 200 with the full body
  local url=$1 t=$2 i out
  shift 2
  for ((i = 0; i < t * 10; i++)); do
    out=$("$@" curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 2 "$url" 2>/dev/null) || true
    [[ $out == "200 $BODY_BYTES" ]] && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- configs
write_configs() {
  # App Mesh API shape, one array. DROP_ALL: the client may reach only its
  # listed backends (the policy map is consulted on every connect).
  cat > "$CONF/shop.json" <<'EOF'
[
  {"meshName": "shop", "spec": {"egressFilter": {"type": "DROP_ALL"}}},
  {"meshName": "shop", "virtualNodeName": "product",
   "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}},
  {"meshName": "shop", "virtualServiceName": "product.shop.local",
   "spec": {"provider": {"virtualNode": {"virtualNodeName": "product"}}}},
  {"meshName": "shop", "virtualNodeName": "inventory",
   "spec": {"listeners": [{"portMapping": {"port": 7000, "protocol": "tcp"}}]}},
  {"meshName": "shop", "virtualServiceName": "inventory.shop.local",
   "spec": {"provider": {"virtualNode": {"virtualNodeName": "inventory"}}}},
  {"meshName": "shop", "virtualNodeName": "client",
   "spec": {"backends": [
     {"virtualService": {"virtualServiceName": "product.shop.local"}},
     {"virtualService": {"virtualServiceName": "inventory.shop.local"}}]}}
]
EOF

  local body name addr port
  body=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x')
  for name in product inventory; do
    if [[ $name == product ]]; then addr=$PRODUCT_ADDR port=8080; else addr=$INVENTORY_ADDR port=7000; fi
    mkdir -p "$RUN/nginx-$name"
    cat > "$RUN/nginx-$name.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $RUN/nginx-$name/nginx.pid;
error_log $RUN/nginx-$name/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  default_type application/octet-stream;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_body_temp_path $RUN/nginx-$name/tmp_body;
  proxy_temp_path $RUN/nginx-$name/tmp_proxy;
  fastcgi_temp_path $RUN/nginx-$name/tmp_fastcgi;
  uwsgi_temp_path $RUN/nginx-$name/tmp_uwsgi;
  scgi_temp_path $RUN/nginx-$name/tmp_scgi;
  server { listen $addr:$port backlog=4096; location / { return 200 "$body"; } }
}
EOF
    nginx -t -q -p "$RUN/nginx-$name" -e "$RUN/nginx-$name/error.log" -c "$RUN/nginx-$name.conf" ||
      die "nginx config for $name invalid"
  done

  # The sidecar: one thread like the agent's one worker, keep-alive to the
  # server (Envoy pools upstream connections too), running as user haproxy so
  # that iptables can exempt its own connections (Istio exempts uid 1337).
  cat > "$RUN/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
  user haproxy
  group haproxy
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend outbound
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend product
backend product
  server p1 $PRODUCT_ADDR:8080
EOF
  haproxy -c -q -f "$RUN/haproxy.cfg" || die "haproxy config invalid"

  cat > "$RUN/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
EOF
}

# iptables in the benchmark namespace, as a sidecar mesh's init container
# writes it: every outbound TCP connection except the proxy's own and loopback
# destinations goes to the proxy's port. Installed only while the haproxy
# scenario runs and flushed after it, so that conntrack (which a nat table
# turns on for the whole namespace) does not tax the other scenarios.
sidecar_rules_on() {
  in_ns iptables -t nat -N E2E_OUTPUT
  in_ns iptables -t nat -A E2E_OUTPUT -m owner --uid-owner haproxy -j RETURN
  in_ns iptables -t nat -A E2E_OUTPUT -d 127.0.0.0/8 -j RETURN
  in_ns iptables -t nat -A E2E_OUTPUT -p tcp -j REDIRECT --to-ports "$HAPROXY_PORT"
  in_ns iptables -t nat -A OUTPUT -p tcp -j E2E_OUTPUT
}
sidecar_rules_off() {
  in_ns iptables -t nat -F
  in_ns iptables -t nat -X
}

# ---------------------------------------------------------------- scenarios
# How each scenario's client runs: a command prefix and the URL it calls.
declare -A URL=(
  [direct]="http://$PRODUCT_ADDR:8080/"
  [nm-l7]="http://product.shop.local:8080/"
  [nm-direct]="http://inventory.shop.local:7000/"
  [haproxy]="http://$SERVICE_ADDR:8080/"
)
SCEN=(direct nm-l7 nm-direct haproxy)

client_prefix() { # scenario -> words in PFX
  PFX=(nsenter --net="$NETNS" nice -n "$NICE")
  [[ $PIN == 1 ]] && PFX+=(taskset -c "$CLIENT_CPU")
  case $1 in
    nm-l7 | nm-direct)
      PFX+=("$CTL_BIN" run --admin_socket="$SOCK" --mesh shop --virtual-node client --) ;;
  esac
}

proxy_pid() { # scenario -> pid of the proxy on its path ('' when none)
  case $1 in
    nm-l7 | nm-direct) echo "${SESS[agent]}" ;;
    haproxy) echo "${SESS[haproxy]}" ;;
    *) echo "" ;;
  esac
}

# CPU ticks (utime + stime, all threads) and sum of the threads' run time in
# ns (schedstat, finer grained) of a process.
cpu_ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
# Kernel memory of the maps the agent pinned (not part of its RSS).
bpf_maps_kb() {
  local f b t=0
  command -v bpftool > /dev/null || { echo 0; return; }
  : > "$RUN/bpf_maps.txt"
  while read -r f; do
    b=$(bpftool -j map show pinned "$f" 2>/dev/null | grep -o '"bytes_memlock":[0-9]*' | cut -d: -f2) || true
    t=$((t + ${b:-0}))
    [[ -n $b ]] && echo "$b ${f#"$PIN_DIR"/}" >> "$RUN/bpf_maps.txt"
  done < <(find "$PIN_DIR" -type f 2>/dev/null | sort)
  echo $((t / 1024))
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

measure() { # round scenario test cmd...: output + proxy CPU delta in raw/
  local base="$RUN/raw/r$1__$2__$3" scen=$2 pp t0 t1 n0 n1
  shift 3
  pp=$(proxy_pid "$scen")
  [[ -n $pp ]] && { t0=$(cpu_ticks "$pp"); n0=$(cpu_ns "$pp"); }
  client "$base.txt" "$@" || log "warning: client failed (see $base.txt)"
  if [[ -n $pp ]]; then
    t1=$(cpu_ticks "$pp"); n1=$(cpu_ns "$pp")
    echo "proxy_ticks=$((t1 - t0)) proxy_ns=$((n1 - n0)) clk_tck=$CLK_TCK" > "$base.cpu"
  fi
}

run_scenario() { # round scenario
  local r=$1 s=$2
  client_prefix "$s"
  if [[ $s == haproxy ]]; then sidecar_rules_on; fi
  measure "$r" "$s" "c$CONNS" "${PFX[@]}" wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$RUN/report.lua" "${URL[$s]}"
  measure "$r" "$s" c1 "${PFX[@]}" wrk -t1 -c1 -d"${LAT_DUR}s" --latency -s "$RUN/report.lua" "${URL[$s]}"
  if [[ $s == haproxy ]]; then sidecar_rules_off; fi
  return 0
}

# Fixed rate: h2load --h1, RATE_CONNS keep-alive connections, RATE/RATE_CONNS
# requests per second each, RATE_DUR seconds. CPU from /proc/PID/stat (and
# schedstat) deltas across the run; RSS at its end.
run_rate() { # scenario
  local s=$1 base="$RUN/raw/rate__$1" pp t0 t1 n0 n1 w0 w1 per
  client_prefix "$s"
  pp=$(proxy_pid "$s")
  per=$("$PY" -c "print($RATE / $RATE_CONNS)")
  if [[ $s == haproxy ]]; then sidecar_rules_on; fi
  # A short unpaced warm-up so that pools and buffers exist, as in steady state.
  client /dev/null "${PFX[@]}" wrk -t1 -c"$RATE_CONNS" -d1s "${URL[$s]}" || true
  t0=$(cpu_ticks "$pp"); n0=$(cpu_ns "$pp"); w0=$(date +%s%N)
  client "$base.txt" "${PFX[@]}" h2load --h1 -t1 -c"$RATE_CONNS" --rps="$per" -D "$RATE_DUR" "${URL[$s]}" ||
    log "warning: h2load failed (see $base.txt)"
  t1=$(cpu_ticks "$pp"); n1=$(cpu_ns "$pp"); w1=$(date +%s%N)
  if [[ $s == haproxy ]]; then sidecar_rules_off; fi
  local maps=0
  [[ $s == haproxy ]] || maps=$(bpf_maps_kb)
  echo "proxy_ticks=$((t1 - t0)) proxy_ns=$((n1 - n0)) wall_ns=$((w1 - w0)) clk_tck=$CLK_TCK" \
    "rss_kb=$(rss_kb "$pp") hwm_kb=$(hwm_kb "$pp") threads=$(ls "/proc/$pp/task" | wc -l)" \
    "bpf_maps_kb=$maps" > "$base.cpu"
}

# ---------------------------------------------------------------- setup
write_configs
"$CTL_BIN" validate "$CONF" > "$RUN/validate.log" 2>&1 || { cat "$RUN/validate.log" >&2; die "mesh model invalid"; }

ip netns add "$ID"
NETNS_MADE=1
ip -n "$ID" link set lo up
ip -n "$ID" addr add "$SERVICE_ADDR/32" dev lo  # a route for the sidecar's REDIRECT; nothing listens

log "starting nodemesh-agent in netns $ID (pins $PIN_DIR, cgroups $CG_ROOT, $AGENT_CG)"
# shellcheck disable=SC2206  # AGENT_EXTRA_FLAGS is meant to be word-split
extra=($AGENT_EXTRA_FLAGS)
AGENT_STARTED=1
start_sess agent "$PROXY_CPU" "$AGENT_BIN" --config_dir="$CONF" --bpf_pin_dir="$PIN_DIR" \
  --cgroup_root="$CG_ROOT" --agent_cgroup="$AGENT_CG" --admin_socket="$SOCK" --state_dir="$TMPD/state" \
  --admin_address="$ADMIN" --api_auth=none --workers="$AGENT_WORKERS" --drain_seconds=1 --logtostderr \
  "${extra[@]}"
for i in $(seq 1 150); do
  in_ns curl -sf -o /dev/null --max-time 1 "http://$ADMIN/ready" && break
  kill -0 "${SESS[agent]}" 2>/dev/null || { tail -20 "$RUN/agent.log" >&2; die "agent exited"; }
  sleep 0.1
done
in_ns curl -sf -o /dev/null "http://$ADMIN/ready" || { tail -20 "$RUN/agent.log" >&2; die "agent not ready in 15 s"; }
[[ $(cat "/proc/${SESS[agent]}/comm") == nodemesh-agent ]] || die "pid ${SESS[agent]} is not the agent"

log "starting servers: nginx as workloads product ($PRODUCT_ADDR:8080) and inventory ($INVENTORY_ADDR:7000)"
start_sess server-product "$SERVER_CPU" "$CTL_BIN" run --admin_socket="$SOCK" --mesh shop --virtual-node product \
  --address "$PRODUCT_ADDR" -- nginx -p "$RUN/nginx-product" -e "$RUN/nginx-product/error.log" \
  -c "$RUN/nginx-product.conf"
start_sess server-inventory "$SERVER_CPU" "$CTL_BIN" run --admin_socket="$SOCK" --mesh shop \
  --virtual-node inventory --address "$INVENTORY_ADDR" -- nginx -p "$RUN/nginx-inventory" \
  -e "$RUN/nginx-inventory/error.log" -c "$RUN/nginx-inventory.conf"
start_sess haproxy "$PROXY_CPU" haproxy -db -f "$RUN/haproxy.cfg"

wait_http "http://$PRODUCT_ADDR:8080/" 10 in_ns || die "product nginx not serving (see $RUN/server-product.log)"
wait_http "http://$INVENTORY_ADDR:7000/" 10 in_ns || die "inventory nginx not serving (see $RUN/server-inventory.log)"

# ---------------------------------------------------------------- path checks
log "checking each path"
for s in "${SCEN[@]}"; do
  client_prefix "$s"
  if [[ $s == haproxy ]]; then sidecar_rules_on; fi
  wait_http "${URL[$s]}" 15 "${PFX[@]}" || die "$s: GET ${URL[$s]} did not return 200 with $BODY_BYTES bytes"
  if [[ $s == haproxy ]]; then sidecar_rules_off; fi
done
# Without the rules the service address answers nothing: the haproxy row is
# really the REDIRECT path.
if in_ns curl -s -o /dev/null --max-time 2 "${URL[haproxy]}"; then
  die "$SERVICE_ADDR:8080 answers without the REDIRECT rules"
fi
# The datapath decided as intended: product is PROXY, inventory DIRECT.
in_ns "$CTL_BIN" --bpf_pin_dir="$PIN_DIR" maps > "$RUN/maps.txt" 2>&1 || true
in_ns "$CTL_BIN" --agent="http://$ADMIN" --admin_socket="$SOCK" workloads > "$RUN/workloads.txt" 2>&1 || true
grep -q 'inventory.*DIRECT\|DIRECT.*inventory' "$RUN/maps.txt" ||
  log "warning: could not confirm DIRECT for inventory in 'nodemeshctl maps' (see $RUN/maps.txt)"
# The proxy's request count moves for the L7 path only.
proxy_reqs() {
  in_ns curl -s "http://$ADMIN/metrics" | awk '/^nodemesh_requests_total[{ ]/ { s += $NF } END { printf "%.0f\n", s }'
}
client_prefix nm-direct
q0=$(proxy_reqs)
"${PFX[@]}" curl -s -o /dev/null "${URL[nm-direct]}" > /dev/null 2>&1 || true
q1=$(proxy_reqs)
client_prefix nm-l7
"${PFX[@]}" curl -s -o /dev/null "${URL[nm-l7]}" > /dev/null 2>&1 || true
q2=$(proxy_reqs)
((q1 == q0)) || die "a request to inventory.shop.local went through the proxy (DIRECT expected)"
((q2 > q1)) || log "warning: nodemesh_requests_total did not move for product.shop.local (see $RUN/agent.log)"

# ---------------------------------------------------------------- run
cat > "$RUN/meta.env" <<EOF
stamp=$STAMP
rounds=$ROUNDS
dur=$DUR
lat_dur=$LAT_DUR
conns=$CONNS
rate=$RATE
rate_conns=$RATE_CONNS
rate_dur=$RATE_DUR
pin=$PIN
client_cpu=$CLIENT_CPU
server_cpu=$SERVER_CPU
proxy_cpu=$PROXY_CPU
nice=$NICE
agent_workers=$AGENT_WORKERS
agent_extra_flags=$AGENT_EXTRA_FLAGS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
kernel=$(uname -r)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
nproc=$NCPU
nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')
haproxy=$(haproxy -v | head -1 | awk '{print $3}')
EOF

# Benchmarks on a shared box: say how busy it was before we started.
busy_pct() { # over 2 s, all CPUs: 100 - idle%
  local a b
  read -ra a < /proc/stat; sleep 2; read -ra b < /proc/stat
  local tot=0 i
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo $((100 - 100 * (b[4] - a[4] + b[5] - a[5]) / (tot > 0 ? tot : 1)))
}
BUSY=$(busy_pct)
echo "busy_before_pct=$BUSY" >> "$RUN/meta.env"
((BUSY <= 10)) || log "warning: the machine was ${BUSY}% busy before the run: expect noisy numbers"

log "warm-up (${WARMUP}s per scenario, discarded)"
for s in "${SCEN[@]}"; do
  client_prefix "$s"
  if [[ $s == haproxy ]]; then sidecar_rules_on; fi
  client /dev/null "${PFX[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${URL[$s]}" || true
  if [[ $s == haproxy ]]; then sidecar_rules_off; fi
done

# Interleaved rounds, order rotated each round, so that every scenario sees
# the same noise from the machine's neighbours.
n=${#SCEN[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < n; i++)); do
    s=${SCEN[$(((i + r - 1) % n))]}
    log "round $r/$ROUNDS: $s (wrk -c$CONNS ${DUR}s, -c1 ${LAT_DUR}s)"
    run_scenario "$r" "$s"
  done
done

for s in nm-l7 nm-direct haproxy; do
  log "fixed rate: $s, $RATE req/s over $RATE_CONNS connections, ${RATE_DUR}s"
  run_rate "$s"
done

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.env"
for name in "${!SESS[@]}"; do
  kill -0 "${SESS[$name]}" 2>/dev/null || die "$name died during the run (log: $RUN/$name.log)"
done

# ---------------------------------------------------------------- report
"$PY" - "$RUN" "${SCEN[@]}" > "$RUN/results.md" <<'EOF'
import os, re, statistics, sys
run, scen = sys.argv[1], sys.argv[2:]
meta = dict(l.strip().split("=", 1) for l in open(os.path.join(run, "meta.env")) if "=" in l)
raw = os.path.join(run, "raw")
NAMES = {"direct": "direct (no mesh)", "nm-l7": "nodemesh L7 (proxy)",
         "nm-direct": "nodemesh DIRECT (BPF only)", "haproxy": "HAProxy sidecar (iptables)"}

def kv(path):
    try:
        txt = open(path).read()
    except OSError:
        return {}
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", txt)}

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(x, nd=0):
    if x is None:
        return ""
    return f"{x:,.{nd}f}"

conns = meta["conns"]
rows = []
for test in (f"c{conns}", "c1"):
    base = None
    for s in scen:
        rps, p50, p99, cpu, ratio, errs = [], [], [], [], [], 0
        for r in range(1, int(meta["rounds"]) + 1):
            w = kv(os.path.join(raw, f"r{r}__{s}__{test}.txt"))
            if "rps" not in w:
                continue
            rps.append(w["rps"]); p50.append(w["p50_us"]); p99.append(w["p99_us"])
            errs += int(w.get("errors", 0))
            d = kv(os.path.join(raw, f"r{r}__direct__{test}.txt"))
            if d.get("rps"):
                ratio.append(w["rps"] / d["rps"])
            c = kv(os.path.join(raw, f"r{r}__{s}__{test}.cpu"))
            if c and w.get("requests"):
                cpu.append(c["proxy_ns"] / 1e3 / w["requests"])
        rows.append((f"-{test}", NAMES[s], med(rps), med(ratio), med(p50), med(p99), med(cpu), errs))

print(f"# nodemesh end-to-end benchmark, {meta['stamp']}")
print()
print(f"Kernel {meta['kernel']}, {meta['nproc']} CPUs ({meta['cpu_model']}); nginx {meta['nginx']} "
      f"serving 1 KiB, HAProxy {meta['haproxy']}; wrk -t1, {meta['rounds']} interleaved rounds "
      f"({meta['dur']} s at -c{conns}, {meta['lat_dur']} s at -c1), medians; x direct is the median "
      f"of per-round ratios. Client on CPU {meta['client_cpu']}, server on CPU {meta['server_cpu']}, "
      f"agent (--workers={meta['agent_workers']}) and HAProxy (nbthread 1) on CPU {meta['proxy_cpu']}; "
      f"nice {meta['nice']}. "
      f"Load average (1/5/15 min) at start {meta['load_start']}, at end {meta.get('load_end', '?')}; "
      f"CPU busy in the 2 s before the run: {meta.get('busy_before_pct', '?')}%.")
print()
print("| wrk | path | req/s | x direct | p50 µs | p99 µs | proxy CPU µs/req | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for t, name, rps, ratio, p50, p99, cpu, errs in rows:
    print(f"| {t} | {name} | {fmt(rps)} | {fmt(ratio, 2)} | {fmt(p50)} | {fmt(p99)} | {fmt(cpu, 1)} | {errs} |")
print()
print("proxy CPU: utime+stime of every thread of the agent (nodemesh rows) or HAProxy, "
      "from schedstat, over the wrk run, divided by requests served. DIRECT's is the agent "
      "idling: the BPF connect() rewrite is charged to the client.")
print()
print(f"## Proxy CPU and memory at a fixed rate ({meta['rate']} req/s target, h2load --h1 "
      f"-c{meta['rate_conns']} --rps, {meta['rate_dur']} s)")
print()
print("| path | process | req/s served | vCPU (stat) | vCPU per 1k req/s (stat) | (schedstat) | RSS MB | peak RSS MB | BPF maps MB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for s, proc in (("nm-l7", "nodemesh-agent"), ("nm-direct", "nodemesh-agent"), ("haproxy", "haproxy")):
    c = kv(os.path.join(raw, f"rate__{s}.cpu"))
    txt = open(os.path.join(raw, f"rate__{s}.txt")).read() if os.path.exists(os.path.join(raw, f"rate__{s}.txt")) else ""
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", txt)
    fin = re.search(r"finished in ([0-9.]+)(ms|s)", txt)
    if not c or not m or not fin:
        print(f"| {NAMES[s]} | {proc} | (failed) | | | | | | |")
        continue
    secs = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    served = int(m.group(1)) / secs
    wall = c["wall_ns"] / 1e9
    v_stat = c["proxy_ticks"] / c["clk_tck"] / wall
    v_ns = c["proxy_ns"] / 1e9 / wall
    per = 1000 / served if served else float("nan")
    maps = f"{c['bpf_maps_kb'] / 1024:.1f}" if proc != "haproxy" else ""
    print(f"| {NAMES[s]} | {proc} | {fmt(served)} | {v_stat:.4f} | {v_stat * per:.4f} | {v_ns * per:.4f} | "
          f"{c['rss_kb'] / 1024:.1f} | {c['hwm_kb'] / 1024:.1f} | {maps} |")
print()
print("vCPU = CPU seconds of the process (all threads) over the run's wall time; per 1k req/s = "
      "vCPU x 1000 / req/s served. RSS = VmRSS at the end of the run, peak = VmHWM over the process's "
      "life (the max-load runs included). BPF maps = bytes_memlock of the maps the agent pinned, "
      "kernel memory outside its RSS.")
print()
print("Istio's published figures at 1,000 req/s of 1 KiB: a sidecar (Envoy) 0.20 vCPU and 60 MB; "
      "ambient ztunnel 0.06 vCPU and 12 MB. A sidecar mesh has one per pod (two on every hop); "
      "the nodemesh agent is one per node.")
EOF
cat "$RUN/results.md"
log "done; results $RUN/results.md (raw outputs, logs and config under $RUN)"

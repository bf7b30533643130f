#!/usr/bin/env bash
# run.sh — HTTP/1.1 benchmark of nodemesh-agent as an App Mesh VirtualGateway,
# against a direct connection, HAProxy and nginx, using the shared peers.sh
# harness (see bench/http1/README.md).
#
#   sudo bench/http1/run.sh                      # full run, ~5 minutes
#   sudo ROUNDS=3 DUR=4 bench/http1/run.sh       # peers.sh knobs pass through
#   sudo BENCH_SYSCALLS=1 bench/http1/run.sh     # also count syscalls per request
#   sudo BENCH_PEERS=0 BENCH_SYSCALLS=1 bench/http1/run.sh   # syscalls only
#
# Env: PEERS_SH (default $REPO/../shared/bench/peers.sh), AGENT_BIN (default
# $REPO/build/agent/nodemesh-agent), AGENT_WORKERS=1, BENCH_PEERS=1,
# BENCH_SYSCALLS=0, SYSCALL_DUR=5, OUT_DIR=/tmp/nodemesh-bench-http1 (syscall
# results and agent logs; peers.sh writes its own results, see its OUT_ROOT).
# Every peers.sh knob (ROUNDS DUR LAT_DUR H2_DUR IPERF_DUR WARMUP CONNS PIN
# CLIENT_CPU SERVER_CPU PROXY_CPU BASE_PORT SKIP_INSTALL OUT_ROOT OUT_MD ...) is
# read by peers.sh from the environment as is.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PEERS_SH=${PEERS_SH:-$REPO/../shared/bench/peers.sh}
AGENT_BIN=${AGENT_BIN:-$REPO/build/agent/nodemesh-agent}
BENCH_PEERS=${BENCH_PEERS:-1}
BENCH_SYSCALLS=${BENCH_SYSCALLS:-0}
SYSCALL_DUR=${SYSCALL_DUR:-5}
OUT_DIR=${OUT_DIR:-/tmp/nodemesh-bench-http1}
STAMP=$(date +%Y%m%d-%H%M%S)
PY=/usr/bin/python3

log() { printf '[%(%H:%M:%S)T] http1: %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (BPF, cgroups, and peers.sh installs packages)"
[[ -x $AGENT_BIN ]] || die "no agent at $AGENT_BIN (build it: cmake --build build --target nodemesh-agent, or set AGENT_BIN)"
if ((BENCH_PEERS)); then
  [[ -r $PEERS_SH ]] || die "no peers.sh at $PEERS_SH (set PEERS_SH)"
fi

# The agent's kernel objects live under names unique to this run, so a
# benchmark never touches a production agent's pins or cgroups.
CGROUP2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CGROUP2 ]] || die "no cgroup2 mount in /proc/mounts"
if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { found = 1 } END { exit !found }' /proc/mounts; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi
export NM_BENCH_PIN_DIR=/sys/fs/bpf/nm-bench-$$
export NM_BENCH_CGROUP_ROOT=$CGROUP2/nm-bench-$$
export NM_BENCH_AGENT_CGROUP=$CGROUP2/nm-bench-agent-$$
mkdir -p "$OUT_DIR"
export NM_BENCH_STATE_DIR="$OUT_DIR/state-$STAMP"
mkdir -p "$NM_BENCH_STATE_DIR"
export AGENT_BIN

# Processes this script starts itself (the syscall phase), by session id.
declare -a OWN_SESSIONS=()

stop_session() { # sid
  local i
  kill -TERM -- "-$1" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}

cleanup() {
  local rc=$? sid
  trap - EXIT INT TERM
  for sid in "${OWN_SESSIONS[@]}"; do stop_session "$sid"; done
  # The agent leaves its datapath pinned on exit by design; remove it.
  if ! "$AGENT_BIN" --cleanup --bpf_pin_dir="$NM_BENCH_PIN_DIR" --cgroup_root="$NM_BENCH_CGROUP_ROOT" \
       --agent_cgroup="$NM_BENCH_AGENT_CGROUP" --logtostderr > "$NM_BENCH_STATE_DIR/cleanup.log" 2>&1; then
    log "warning: agent --cleanup failed (see $NM_BENCH_STATE_DIR/cleanup.log); check $NM_BENCH_PIN_DIR," \
      "$NM_BENCH_CGROUP_ROOT and $NM_BENCH_AGENT_CGROUP by hand"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port() { # port timeout_s
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- peers.sh
run_peers() {
  local cmd
  cmd="exec $(printf '%q' "$HERE/candidate.sh")"
  log "peers.sh with candidate nodemesh-agent (pins $NM_BENCH_PIN_DIR)"
  CANDIDATE_CMD=$cmd bash "$PEERS_SH"
  # peers.sh keeps the candidate's log and config dir in its run folder.
  log "peers.sh done; candidate log and config: <peers OUT_ROOT>/runs/<stamp>/candidate.log, nodemesh-config/"
}

# ---------------------------------------------------------------- syscalls
# A separate short phase: one keep-alive connection through the gateway to
# the test upstream, strace -c on every agent thread while wrk runs, total
# calls divided by requests served. strace slows the agent a lot; the counts,
# not the rate, are the result.
run_syscalls() {
  local dir="$NM_BENCH_STATE_DIR/syscalls" up_port cand_port up_sid agent_sid strace_pid body i
  if ! command -v strace > /dev/null; then
    log "strace not installed: syscall count skipped (apt-get install strace)"
    return 0
  fi
  command -v wrk > /dev/null || { log "wrk not installed: syscall count skipped (apt-get install wrk)"; return 0; }
  mkdir -p "$dir"
  up_port=$(free_port)
  cand_port=$(free_port)

  setsid "$PY" "$REPO/tests/integration/upstream_server.py" --port "$up_port" --name bench \
    > "$dir/upstream.log" 2>&1 < /dev/null &
  up_sid=$!
  OWN_SESSIONS+=("$up_sid")
  wait_port "$up_port" 10 || die "test upstream did not start (see $dir/upstream.log)"

  rm -f "$NM_BENCH_STATE_DIR/agent.pid"
  CANDIDATE_PORT=$cand_port UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=$up_port RUN_DIR=$dir \
    setsid bash "$HERE/candidate.sh" > "$dir/agent.log" 2>&1 < /dev/null &
  agent_sid=$!
  OWN_SESSIONS+=("$agent_sid")
  wait_port "$cand_port" 30 || die "agent is not listening on :$cand_port (see $dir/agent.log)"
  body=$(curl -sS --max-time 5 "http://127.0.0.1:$cand_port/") || die "GET through the agent failed"
  [[ $body == bench ]] || die "unexpected body through the agent: '$body'"

  wrk -t1 -c1 -d1s "http://127.0.0.1:$cand_port/" > /dev/null 2>&1 || true  # warm-up
  strace -c -f -qq -o "$dir/strace.txt" -p "$agent_sid" &
  strace_pid=$!
  sleep 1  # attach to every thread before the load starts
  wrk -t1 -c1 -d"${SYSCALL_DUR}s" "http://127.0.0.1:$cand_port/" > "$dir/wrk.txt" 2>&1 ||
    log "warning: wrk failed (see $dir/wrk.txt)"
  kill -INT "$strace_pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$strace_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$strace_pid" 2>/dev/null || true

  local requests
  requests=$(awk '/requests in/ { print $1; exit }' "$dir/wrk.txt")
  [[ -n $requests && $requests -gt 0 ]] || die "wrk served no requests (see $dir/wrk.txt)"
  [[ -s $dir/strace.txt ]] || die "strace wrote nothing (see $dir/strace.txt)"
  local md="$OUT_DIR/syscalls-$STAMP.md"
  {
    echo "# nodemesh-agent syscalls per request, $STAMP"
    echo
    echo "wrk -t1 -c1 -d${SYSCALL_DUR}s through the VirtualGateway (keep-alive, both sides);"
    echo "$requests requests; strace -c -f on every agent thread. $(uname -r)."
    echo
    echo "| syscall | calls | per request | errors |"
    echo "|---|---:|---:|---:|"
    # strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall.
    awk -v n="$requests" '
      $1 ~ /^[0-9.]+$/ && NF >= 5 {
        name = $NF; calls = $4; errors = (NF == 6) ? $5 : 0
        printf "| %s | %d | %.2f | %d |\n", name, calls, calls / n, errors
      }' "$dir/strace.txt" | sort -t'|' -k3,3nr
  } > "$md"
  log "syscalls per request: $(awk -F'|' '$2 ~ /total/ { gsub(/ /, "", $4); print $4 }' "$md") (table: $md)"

  stop_session "$agent_sid"
  stop_session "$up_sid"
  OWN_SESSIONS=()
}

((BENCH_PEERS)) && run_peers
((BENCH_SYSCALLS)) && run_syscalls
log "done; agent state and logs under $NM_BENCH_STATE_DIR"

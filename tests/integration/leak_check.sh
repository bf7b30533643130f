#!/usr/bin/env bash
# Runs after every integration test (CTest fixture cleanup): nothing the
# tests made may remain attached, pinned or created anywhere.
set -u
fail=0
cg=$(awk '$3=="cgroup2"{print $2; exit}' /proc/mounts)
bpffs=$(awk '$3=="bpf"{print $2}' /proc/mounts)

left=$(find "$cg" -maxdepth 1 -name 'nmtest-*' 2>/dev/null)
[ -z "$left" ] || { echo "leak: test cgroups remain: $left"; fail=1; }

for d in $bpffs; do
  pins=$(find "$d" -maxdepth 1 -name 'nmtest-*' 2>/dev/null)
  [ -z "$pins" ] || { echo "leak: test pins remain: $pins"; fail=1; }
done

# No nodemesh program attached to any test cgroup or to the root cgroup.
tree=$(bpftool cgroup tree "$cg" 2>/dev/null)
if echo "$tree" | grep -q 'nmtest-'; then
  echo "leak: programs attached under test cgroups:"; echo "$tree"; fail=1
fi
root=$(bpftool cgroup show "$cg" 2>/dev/null | grep -E ' nm_' || true)
[ -z "$root" ] || { echo "leak: programs on the root cgroup: $root"; fail=1; }

# No test agent still running.
if pgrep -f -- '--bpf_pin_dir=/sys/fs/bpf/nmtest-' >/dev/null; then
  echo "leak: test agents still running"; fail=1
fi

# No test etcd (tests/integration/etcd_fixture.h) still running, and none
# of their directories left.
if pgrep -f -- '--data-dir=/tmp/nmtest-' >/dev/null; then
  echo "leak: test etcd still running:"; pgrep -af -- '--data-dir=/tmp/nmtest-'
  fail=1
fi
left=$(find /tmp -maxdepth 1 -name 'nmtest-*-etcd' 2>/dev/null)
[ -z "$left" ] || { echo "leak: test etcd directories remain: $left"; fail=1; }

[ $fail -eq 0 ] && echo "leak check: nothing left behind"
exit $fail

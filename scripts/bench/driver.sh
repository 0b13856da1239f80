#!/bin/bash
# Guest driver of scripts/bench-ipvs (and bench-director): for each
# repetition and tool, a fresh network namespace, the guest script inside it
# under a time limit, then teardown.
# usage: driver.sh REPS N M PHASE_LIMIT_SECS
# environment: BENCH_GUEST (guest script, default /work/bench/guest.sh),
#              BENCH_PHASES (default "ipvsdir ipvsadm keepalived"),
#              BENCH_ROTATE=1: repetition i starts with the i-th phase (so
#              that no tool always runs first or right after another)
set -uo pipefail # no -e: one failed repetition must not lose the others

reps=$1 n=$2 m=$3 limit=$4
guest=${BENCH_GUEST:-/work/bench/guest.sh}
phases=${BENCH_PHASES:-ipvsdir ipvsadm keepalived}
# By full path: busybox timeout runs its own applet for a bare "ip".
ip=$(command -v ip)
echo "R env 0 0 kernel=$(uname -r) bash=${BASH_VERSION%%(*}"

for i in $(seq 1 "$reps"); do
    set -- $phases
    if [ "${BENCH_ROTATE:-0}" = 1 ]; then
        for ((k = (i - 1) % $#; k > 0; k--)); do set -- "${@:2}" "$1"; done
    fi
    for phase in "$@"; do
        ns=b$i$phase
        ip netns add "$ns" || { echo "R ${phase}_phase $i fail netns"; continue; }
        # lo up creates the local routing table; without it the kernel
        # classes every real-server address as non-unicast and refuses it.
        ip netns exec "$ns" ip link set lo up
        # SIGKILL so a hung tool cannot ignore it; whatever it left running
        # in the namespace is killed below.
        timeout -s KILL "$limit" "$ip" netns exec "$ns" bash "$guest" "$phase" "$i" "$n" "$m"
        rc=$?
        [ "$rc" -eq 0 ] || echo "R ${phase}_phase $i fail rc=$rc"
        for p in $(ip netns pids "$ns"); do kill -9 "$p" 2>/dev/null; done
        # Empty the table ourselves (synchronous) rather than leave 10,000
        # entries to the namespace teardown worker, which would run during
        # the next measurement on this single vCPU.
        ip netns exec "$ns" ipvsadm -C
        ip netns del "$ns"
        sleep 2
    done
done

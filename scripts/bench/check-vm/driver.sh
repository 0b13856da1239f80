#!/bin/bash
# Guest driver of scripts/bench-check-vm: every run of every daemon in a
# fresh network namespace (fresh IPVS table and dest trash list), guest.sh
# inside it under a time limit, then teardown.
# usage: [BCV_DAEMONS="keepalived ipvsdir ..."] [BCV_SYSCALLS=1] driver.sh SECS WARM REPS_CPU REPS_ALPHA ALPHA_LIMIT NVS NRS KINDS...
set -uo pipefail # no -e: one failed run must not lose the others

secs=$1 warm=$2 reps_cpu=$3 reps_alpha=$4 alimit=$5 nvs=$6 nrs=$7
shift 7
kinds=$*
daemons=${BCV_DAEMONS:-keepalived ipvsdir}
# Odd reps in the listed order, even reps in the reverse order.
reversed=''
for d in $daemons; do reversed="$d $reversed"; done
# By full path: busybox timeout runs its own applet for a bare "ip".
ip=$(command -v ip)
echo "R env kernel=$(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo) hz=$(getconf CLK_TCK 2>/dev/null || echo 100)"
echo "R env keepalived=$(keepalived --version 2>&1 | head -n1 | tr ' ' _)"

n=0
one() { # one PHASE KIND DAEMON REP LIMIT
    n=$((n + 1))
    local ns=bcv$n rc p
    "$ip" netns add "$ns" || { echo "R $1 $2 $3 $4 fail=netns"; return; }
    # lo up: the listeners' 127.0.1.x addresses, and the local routing
    # table IPVS needs to accept real-server addresses.
    "$ip" netns exec "$ns" "$ip" link set lo up
    timeout -s KILL "$5" "$ip" netns exec "$ns" bash /work/bcv/guest.sh "$1" "$2" "$3" "$4" \
        "$secs" "$warm" "$alimit" "$nvs" "$nrs"
    rc=$?
    [ "$rc" -eq 0 ] || echo "R $1 $2 $3 $4 fail=rc$rc"
    for p in $("$ip" netns pids "$ns"); do kill -9 "$p" 2>/dev/null; done
    # Empty the table ourselves (synchronous) rather than leave it to the
    # namespace teardown worker, which would run during the next run.
    "$ip" netns exec "$ns" ipvsadm -C
    "$ip" netns del "$ns"
    sleep 2
}

# 1. CPU over SECS s.  keepalived first in odd reps, ipvsdir first in even.
for kind in $kinds; do
    for rep in $(seq 1 "$reps_cpu"); do
        order=$daemons
        [ $((rep % 2)) -eq 1 ] || order=$reversed
        for daemon in $order; do
            one cpu "$kind" "$daemon" "$rep" $((warm + secs + 90))
        done
    done
done
# 3 (run before 2). System calls per probe, one run per daemon and kind,
# when --syscalls put strace in the guest.
if [ -n "${BCV_SYSCALLS:-}" ]; then
    for kind in $kinds; do
        for daemon in $daemons; do
            one syscalls "$kind" "$daemon" 1 $((warm + secs + 90))
        done
    done
fi
# 2. alpha: start -> complete table.
for kind in $kinds; do
    for rep in $(seq 1 "$reps_alpha"); do
        order=$daemons
        [ $((rep % 2)) -eq 1 ] || order=$reversed
        for daemon in $order; do
            one alpha "$kind" "$daemon" "$rep" $((alimit + 90))
        done
    done
done

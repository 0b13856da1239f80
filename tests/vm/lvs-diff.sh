#!/bin/sh
# Runs inside the kernel VM (see tests/vm_keepalived_diff.rs): part A of
# the keepalived differential. Each configuration in ./lvs-diff/ is loaded
# by keepalived 2.2.7 (`-C`, its checker process, which keeps the IPVS
# table) and then by ipvsdir (`-C`), each alone in a fresh network
# namespace (IPVS tables are per namespace); once the table is stable,
# `ipvsadm -S -n` and the timeouts are printed per tool.
set -u
sec() { echo "=== $1"; }

# The table once two reads 0.5 s apart agree and it is not empty (10 s).
stable() { # $1: namespace
    prev='' i=0
    while [ $i -lt 20 ]; do
        cur=$(ip netns exec "$1" ipvsadm -S -n | sort)
        [ -n "$cur" ] && [ "$cur" = "$prev" ] && break
        prev=$cur
        i=$((i + 1))
        sleep 0.5
    done
    echo "$cur"
    echo "timeouts: $(ip netns exec "$1" ipvsadm -L --timeout)"
}

# Starts tool $1 on file $2 in namespace $3, prints its table, stops it.
run() {
    tool=$1 conf=$2 ns=$3
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    case $tool in
        keepalived)
            ip netns exec "$ns" keepalived -C -n -l -f "$conf" -p /tmp/$ns.pid \
                -c /tmp/$ns.cpid >/tmp/$ns.log 2>&1 &
            ;;
        ipvsdir)
            ip netns exec "$ns" ipvsdir -C -n -f "$conf" -p /tmp/$ns.pid \
                --control-socket /tmp/$ns.sock >/tmp/$ns.log 2>&1 &
            ;;
    esac
    pid=$!
    sec "lvs $(basename "$conf") $tool"
    stable "$ns"
    kill -TERM $pid
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
    kill -0 $pid 2>/dev/null && { echo "$tool did not stop"; kill -KILL $pid; }
    sec "lvs $(basename "$conf") $tool log"
    cat /tmp/$ns.log
    ip netns pids "$ns" | xargs -r kill -KILL
    ip netns del "$ns"
}

n=0
for conf in lvs-diff/*.conf; do
    n=$((n + 1))
    run keepalived "$conf" ka$n
    run ipvsdir "$conf" id$n
done
sec "lvs done"
echo "$n files"

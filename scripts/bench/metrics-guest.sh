#!/bin/bash
# Guest half of scripts/bench-metrics: `ipvsdir -C` keeps an N x M table
# (no checkers: every real server in) and serves /metrics; each repetition
# times one scrape (the kernel table read with its counters, rendered,
# served) and one `ipvsadm -Ln --stats --exact` (the same counters, read
# and printed by the kernel's own tool), each one fork + exec.
# Prints `R <name> <rep> <microseconds|fail>` lines and a `C` check line.
set -uo pipefail
reps=$1 n=$2 m=$3
now() { t=${EPOCHREALTIME/./}; }
entries() { local -a l; mapfile -t l </proc/net/ip_vs; e=$((${#l[@]} - 3)); }

awk -v n="$n" -v m="$m" '
function vip(i) { return sprintf("10.%d.%d.%d", int(i / 62500), int(i / 250) % 250, i % 250 + 1) }
function rip(k) { return sprintf("172.%d.%d.%d", 16 + int(k / 62500), int(k / 250) % 250, k % 250 + 1) }
BEGIN {
    for (i = 0; i < n; i++) {
        printf "virtual_server %s 80 {\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n", vip(i)
        for (j = 0; j < m; j++) printf "    real_server %s 80 {\n        weight 1\n    }\n", rip(i * m + j)
        print "}"
    }
}' >/tmp/bench.conf

ipvsdir -f /tmp/bench.conf -C --metrics-listen 127.0.0.1:9650 2>/tmp/ipvsdir.log &
pid=$!
expected=$((n + n * m))
i=0; entries
while [ "$e" -lt "$expected" ] && [ $i -lt 1200 ]; do sleep 0.5; i=$((i + 1)); entries; done
[ "$e" -ge "$expected" ] || { echo "table incomplete: $e of $expected entries" >&2; tail -5 /tmp/ipvsdir.log >&2; }

for rep in $(seq 1 "$reps"); do
    now; t0=$t
    if timeout 120 busybox wget -q -O /tmp/metrics http://127.0.0.1:9650/metrics 2>/dev/null; then
        now; echo "R scrape $rep $((t - t0))"
    else
        echo "R scrape $rep fail"
    fi
    now; t0=$t
    if ipvsadm -Ln --stats --exact >/tmp/ipvsadm.out; then
        now; echo "R ipvsadm $rep $((t - t0))"
    else
        echo "R ipvsadm $rep fail"
    fi
done
rs=$(grep -c '^keepalived_lvs_rs_conn{' /tmp/metrics)
ok=$(grep '^ipvsdir_lvs_read_ok ' /tmp/metrics)
echo "C entries=$e rs_series=$rs bytes=$(wc -c </tmp/metrics) $ok"
kill -TERM $pid; wait $pid

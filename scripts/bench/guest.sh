#!/bin/bash
# Guest half of scripts/bench-ipvs: one phase of one repetition, run by the
# guest driver as `ip netns exec benchX bash guest.sh PHASE REP N M`, so every
# full load meets an empty table and an empty dest trash list (IPVS state is
# per network namespace; the kernel keeps deleted dests on a trash list for
# minutes and every later add searches it).
#
# Prints one line per measurement on stdout:
#   R <name> <rep> <microseconds|fail|timeout> [key=value]...
# and anything unexpected on stderr.
#
# Clock: bash's $EPOCHREALTIME (microseconds, no fork).  The guest's busybox
# `date` prints %N literally and /proc/uptime has 10 ms steps; every fork+exec
# costs tens of ms under TCG, so the timed parts fork only the tool measured.
set -uo pipefail # no -e: a failed step is recorded and the rest still run

phase=$1 rep=$2 n=$3 m=$4
d=/work/bench
expected=$((n + n * m)) # services + dests, the entry count of a full table
own=/tmp/own$rep.state  # fresh owned-state per repetition (fresh netns)

now() { t=${EPOCHREALTIME/./}; }

# Services + dests in this netns: /proc/net/ip_vs lines minus the 3 header
# lines.  mapfile is a builtin: the count costs a table walk, not a fork.
entries() {
    local -a l
    mapfile -t l </proc/net/ip_vs
    e=$((${#l[@]} - 3))
}

# 20 ms pause without a fork: read from a FIFO nobody writes.
[ -p /tmp/bench.fifo ] || mkfifo /tmp/bench.fifo
exec 7<>/tmp/bench.fifo
pause() { read -r -t "$1" -u 7 _ || true; }

# "N operation(s) applied, M failed" from an ipvsdir stderr file -> ops, failed.
opcount() {
    ops="?" failed="?"
    local line
    while IFS= read -r line; do
        if [[ $line =~ ^ipvsdir:\ ([0-9]+)\ operation\(s\)\ applied,\ ([0-9]+)\ failed ]]; then
            ops=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]}
        fi
    done <"$1"
}

# Sorted table as rules -> md5 (after the timed part), to check that every
# tool loaded the same table.
tablesum() { sum=$(ipvsadm -Sn | sort | md5sum | cut -c1-12); }

# CPU time of finished children (bash's `times`, no fork), in ms: cpu_mark
# sets cu/cs; cpu_since turns the difference into "user=..ms sys=..ms", to
# tell a tool's own work (user) from the kernel's (sys).
cpu_mark() {
    local u s
    times >/tmp/bench.times
    { read -r _; read -r u s; } </tmp/bench.times
    u=${u#*m} s=${s#*m} # 0m1.234s -> 1.234s (no step here lasts a minute)
    u=${u%s} s=${s%s}
    cu=$((10#${u/./})) cs=$((10#${s/./}))
}
cpu_since() {
    local u0=$cu s0=$cs
    cpu_mark
    cpu="user=$((cu - u0))ms sys=$((cs - s0))ms"
}

# One timed ipvsdir one-shot run: ipvsdir NAME CONF MODE(--apply-once|--release)
ipvsdir_step() {
    local name=$1 conf=$2 mode=$3 rc t0
    cpu_mark
    now
    t0=$t
    ipvsdir -f "$d/$conf" "$mode" --owned-state "$own" 2>/tmp/ipvsdir.err
    rc=$?
    now
    dt=$((t - t0))
    cpu_since
    opcount /tmp/ipvsdir.err
    entries
    if [ "$rc" -ne 0 ]; then
        echo "ipvsdir $name rep $rep: exit $rc:" >&2
        head -n 20 /tmp/ipvsdir.err >&2
    fi
    echo "R $name $rep $dt ops=$ops failed=$failed rc=$rc entries=$e $cpu"
}

# Time one command, stdout discarded: quiet NAME CMD ARGS...
quiet() {
    local name=$1 rc t0
    shift
    cpu_mark
    now
    t0=$t
    "$@" >/dev/null 2>/tmp/quiet.err
    rc=$?
    now
    cpu_since
    [ "$rc" -eq 0 ] || { echo "$name rep $rep: exit $rc:" >&2; head -n 5 /tmp/quiet.err >&2; }
    echo "R $name $rep $((t - t0)) rc=$rc $cpu"
}

case $phase in
ipvsdir)
    ipvsdir_step load_ipvsdir bench.conf --apply-once
    tablesum
    echo "R sum_ipvsdir $rep 0 sum=$sum"
    # Where a one-shot run's time goes, on the loaded table: process
    # start-up, config load, table dump, and all three plus the diff.
    quiet startup_ipvsdir ipvsdir --version
    quiet parse_ipvsdir ipvsdir -f "$d/bench.conf" --config-test
    quiet dump_ipvsdir ipvsdir --dump
    quiet plan_ipvsdir ipvsdir -f "$d/bench.conf" --plan --owned-state "$own"
    quiet dump_ipvsadm ipvsadm -Ln
    # Cost of one read of the full table (what polling /proc/net/ip_vs
    # would cost; the keepalived phase reads it once, to confirm).
    now
    t0=$t
    for _ in 1 2 3 4 5 6 7 8 9 10; do entries; done
    now
    echo "R poll_cost $rep $(((t - t0) / 10)) entries=$e"
    ipvsdir_step noop_ipvsdir bench.conf --apply-once
    ipvsdir_step weight_ipvsdir weight.conf --apply-once
    echo "R check_weight $rep 0 w2=$(ipvsadm -Sn | grep -c -- ' -w 2$')"
    ipvsdir_step add_ipvsdir add.conf --apply-once
    ipvsdir_step revert_ipvsdir bench.conf --apply-once
    tablesum
    echo "R sum_revert $rep 0 sum=$sum"
    ipvsdir_step release_ipvsdir bench.conf --release
    ;;
ipvsadm)
    cpu_mark
    now
    t0=$t
    ipvsadm -R <"$d/rules"
    rc=$?
    now
    dt=$((t - t0))
    cpu_since
    entries
    echo "R load_ipvsadm $rep $dt rc=$rc entries=$e $cpu"
    tablesum
    echo "R sum_ipvsadm $rep 0 sum=$sum"
    now
    t0=$t
    ipvsadm -C
    rc=$?
    now
    dt=$((t - t0))
    entries
    echo "R clear_ipvsadm $rep $dt rc=$rc entries=$e"
    ;;
keepalived)
    limit=${BENCH_KA_LIMIT:-300}000000 # give up waiting for a full table
    log=/tmp/ka$rep.log
    now
    t0=$t
    # -C: checker process only (no VRRP); -n: stay in the foreground so $!
    # is keepalived itself; per-rep pid files so no earlier instance blocks it.
    # -l: log to the console, here a tmpfs file (1000 "Gained quorum" lines
    # while loading, 10,000 "Shutting down service" lines on SIGTERM).
    keepalived -C -n -l -G -f "$d/bench.conf" -p "/tmp/ka$rep.pid" \
        -c "/tmp/kac$rep.pid" >"$log" 2>&1 &
    kpid=$!
    # When is the table complete?  Reading /proc/net/ip_vs costs tens of ms
    # under TCG once the table is large, and is not atomic (4 KB per read(),
    # each restarting a walk that concurrent adds shift), so polling it would
    # both slow keepalived down on this single vCPU and miscount.  Instead,
    # every 20 ms, read the checker child's CPU time (/proc/PID/schedstat,
    # a few bytes, no fork): the load ends at the last poll that saw it grow
    # (an upper bound, <= one interval late).  Only once the checker has sat
    # idle for a whole interval is the table read (consistent then), and the
    # result accepted if it holds every entry.  (At nice 19 the poller starved
    # for seconds and the bound became useless.)  It runs at nice 0 and, bash
    # under TCG being slow (~2-3 ms CPU a poll), takes ~15% of the vCPU: that
    # CPU is reported (poll_cpu), and subtracted in load_keepalived_net.
    read -r p0 _ </proc/$$/schedstat
    polls=0 checks=0 cpid='' last='' busy_at=$t0 res=timeout e=0
    while :; do
        pause 0.02
        now
        if ((t - t0 > limit)); then break; fi
        if ! kill -0 "$kpid" 2>/dev/null; then res=died; break; fi
        if [ -z "$cpid" ]; then
            read -r cpid _ 2>/dev/null <"/tmp/kac$rep.pid" ||
                read -r cpid _ 2>/dev/null <"/proc/$kpid/task/$kpid/children" || cpid=''
            [ -n "$cpid" ] || continue
        fi
        run=''
        read -r run _ 2>/dev/null <"/proc/$cpid/schedstat"
        [ -n "$run" ] || { cpid=''; continue; } # checker gone: respawned?
        polls=$((polls + 1))
        if [ "$run" != "$last" ]; then
            last=$run busy_at=$t
            continue
        fi
        read -r p1 _ </proc/$$/schedstat # poller CPU up to the idle poll
        entries
        checks=$((checks + 1))
        if [ "$e" -eq "$expected" ]; then res=ok; break; fi
    done
    now
    seen=$(((t - busy_at) / 1000))
    dt=$((busy_at - t0))
    [ "$res" = ok ] || dt=$res
    [ "$res" = ok ] || read -r p1 _ </proc/$$/schedstat
    echo "R poll_cpu $rep $(((p1 - p0) / 1000)) polls=$polls"
    net=$dt
    [ "$res" != ok ] || net=$((dt - (p1 - p0) / 1000))
    echo "R load_keepalived_net $rep $net"
    echo "R load_keepalived $rep $dt entries=$e polls=$polls checks=$checks confirmed_ms=+$seen"
    if [ "$res" != ok ]; then
        echo "keepalived rep $rep: $res with $e of $expected entries; log tail:" >&2
        tail -n 20 "$log" >&2
    fi
    # Let keepalived finish whatever it does after the last add before
    # timing its shutdown.
    pause 1
    tablesum
    echo "R sum_keepalived $rep 0 sum=$sum"
    cpid=$(cat "/tmp/kac$rep.pid" 2>/dev/null || echo none)
    now
    t0=$t
    kill -TERM "$kpid"
    wait "$kpid"
    rc=$?
    now
    dt=$((t - t0))
    entries
    # The checker child is not ours; keepalived reaps or SIGKILLs it before
    # it exits, so it should be gone already.
    child=gone
    if [ "$cpid" != none ] && kill -0 "$cpid" 2>/dev/null; then child=alive; fi
    echo "R term_keepalived $rep $dt rc=$rc entries=$e checker=$child"
    if [ "$child" = alive ]; then
        pause 10
        entries
        echo "keepalived rep $rep: checker $cpid outlived its parent; $e entries 10 s later" >&2
    fi
    grep -iE 'timeout|kill|error|fail' "$log" | head -n 5 | sed "s/^/keepalived rep $rep log: /" >&2
    ;;
*)
    echo "guest.sh: unknown phase $phase" >&2
    exit 2
    ;;
esac
exit 0

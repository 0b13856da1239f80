#!/bin/bash
# Guest half of scripts/bench-check-vm: one run of one daemon, started by
# driver.sh as `ip netns exec NS bash guest.sh PHASE KIND DAEMON REP ...` in
# a fresh network namespace (fresh IPVS table; the listeners live in the same
# namespace on 127.0.1.x, where the checks reach them over loopback).
#
# usage: guest.sh cpu|alpha|syscalls tcp|http keepalived|ipvsdir|ipvsdir-before REP SECS WARM LIMIT NVS NRS
# (ipvsdir-before: another ipvsdir build, /usr/local/bin/ipvsdir-before)
#   cpu:   start the daemon, wait WARM s, then measure its CPU over SECS s
#   alpha: start the daemon on the alpha config, time until the table holds
#          all NVS*NRS real servers (poll every 50 ms, give up after LIMIT s)
#   syscalls: start the daemon, wait WARM s, then count its checker's system
#          calls over SECS s (strace -c) and its probes
#
# Prints one line per run on stdout:
#   R <phase> <kind> <daemon> <rep> key=value...
# and anything unexpected on stderr.  Daemon logs go to /results/.
#
# Clock: bash's $EPOCHREALTIME (us, no fork); pauses read a FIFO nobody
# writes (no fork); CPU from /proc/PID/stat utime+stime (clock ticks).
set -uo pipefail # no -e: record what failed and go on

phase=$1 kind=$2 daemon=$3 rep=$4 secs=$5 warm=$6 limit=$7 nvs=$8 nrs=$9
d=/work/bcv
conf=$d/$kind$([ "$phase" = alpha ] && echo 1 || echo 0).conf
expected=$((nvs + nvs * nrs)) # services + dests in /proc/net/ip_vs
run=$phase-$kind-$daemon-$rep
log=/results/$run.log
out="R $phase $kind $daemon $rep"
mkdir -p /results
hz=$(getconf CLK_TCK 2>/dev/null) || hz=100
case $hz in '' | *[!0-9]*) hz=100 ;; esac

now() { t=${EPOCHREALTIME/./}; }
[ -p /tmp/bcv.fifo ] || mkfifo /tmp/bcv.fifo
exec 7<>/tmp/bcv.fifo
pause() { read -r -t "$1" -u 7 _ || true; }

# Entries (services + dests) in this netns' table, without a fork.
entries() {
    local -a l
    mapfile -t l </proc/net/ip_vs
    e=$((${#l[@]} - 3))
}
# Real servers in the table (forks: outside timed parts only).
dests() { nd=$(ipvsadm -Ln 2>/dev/null | grep -c -- '-> [0-9]'); }
# utime+stime of PID in clock ticks -> $c ('' if gone), utime alone -> $u.
ticks() {
    local line rest
    c='' u=''
    read -r line 2>/dev/null <"/proc/$1/stat" || return 1
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    c=$((${12} + ${13})) u=${12}
}
# Context switches (voluntary + not) of PID's main thread, where the
# checks run in both daemons -> $cs ('' if gone).  No fork.
switches() {
    local k v _
    cs=''
    while read -r k v _; do
        case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) cs=$((${cs:-0} + v)) ;; esac
    done 2>/dev/null <"/proc/$1/status"
}
# TCP ActiveOpens / AttemptFails of this netns -> $ao $af.  Only the daemon
# connects in this namespace, so ActiveOpens counts its probes.
tcpstat() {
    local -a f
    ao='' af=''
    while read -r -a f; do
        [ "${f[0]:-}" = Tcp: ] && [[ ${f[1]:-} =~ ^[0-9]+$ ]] && { ao=${f[5]} af=${f[7]}; }
    done </proc/net/snmp
}

# Guest-wide busy and total jiffies (/proc/stat "cpu" line) -> $busy $total.
cpustat() {
    local us ni sy id io irq sirq st _
    read -r _ us ni sy id io irq sirq st _ </proc/stat
    total=$((us + ni + sy + id + io + irq + sirq + st))
    busy=$((total - id - io))
}

# File descriptors: 1000 listeners plus connections.  Both daemons inherit
# the same limit.
ulimit -n 65536 2>/dev/null || ulimit -n 4096

# ---- listeners ------------------------------------------------------------
bench_check serve --count $((nvs * nrs)) --kind "$kind" --threads 1 2>/tmp/serve.err &
spid=$!
now
ts=$t
until grep -q serving /tmp/serve.err 2>/dev/null; do
    if ! kill -0 "$spid" 2>/dev/null || ((t - ts > 60000000)); then
        echo "$run: listeners did not start:" >&2
        cat /tmp/serve.err >&2
        echo "$out fail=listeners"
        exit 1
    fi
    pause 0.1
    now
done

# ---- daemon ---------------------------------------------------------------
rm -f /tmp/ka.pid /tmp/kac.pid /tmp/own.state
start() {
    case $daemon in
    keepalived)
        # -C checkers only, -n foreground (so $! is the parent), -l console
        # log, -G no syslog (none in the guest).
        keepalived --check -n -l -G -f "$conf" --pid=/tmp/ka.pid \
            --checkers_pid=/tmp/kac.pid >"$log" 2>&1 &
        ;;
    ipvsdir | ipvsdir-before)
        "$daemon" -f "$conf" -C --owned-state /tmp/own.state >"$log" 2>&1 &
        ;;
    esac
    dpid=$!
}
# keepalived's checker child (its pid file, else the parent's only child);
# ipvsdir does everything in one process.  -> $cpid
child() {
    cpid=''
    if [ "$daemon" != keepalived ]; then
        cpid=$dpid
        return
    fi
    read -r cpid _ 2>/dev/null </tmp/kac.pid ||
        read -r cpid _ 2>/dev/null <"/proc/$dpid/task/$dpid/children" || cpid=''
}
# SIGTERM, wait for the exit (SIGKILL after 30 s) -> stop= line fields.
stop() {
    local t0 rc wd alive=gone
    now
    t0=$t
    kill -TERM "$dpid"
    (
        sleep 30
        kill -KILL "$dpid" 2>/dev/null && echo "$run: daemon ignored SIGTERM for 30 s, SIGKILLed" >&2
    ) &
    wd=$!
    wait "$dpid"
    rc=$?
    now
    kill "$wd" 2>/dev/null
    entries
    if [ "$daemon" = keepalived ] && [ -n "$cpid" ] && [ -e "/proc/$cpid" ]; then alive=alive; fi
    stopf="exit_ms=$(((t - t0) / 1000)) rc=$rc left=$e checker=$alive"
}
# Log lines that say a check failed or the daemon complained.
logsum() {
    fails=$(grep -ciE 'removing service|timed? ?out|refused|fail|error|down' "$log")
    [ "$fails" -eq 0 ] || {
        echo "$run: $fails log line(s) about failures/errors; first ones:" >&2
        grep -iE 'removing service|timed? ?out|refused|fail|error|down' "$log" | head -n 3 | sed 's/^/    /' >&2
    }
}

case $phase in
cpu)
    now
    t0=$t
    start
    pause "$warm"
    if ! kill -0 "$dpid" 2>/dev/null; then
        echo "$run: daemon exited during warm-up; log:" >&2
        tail -n 20 "$log" >&2
        echo "$out fail=died"
        exit 1
    fi
    child
    entries
    ew=$e
    ticks "$dpid"
    p1=$c
    ticks "$cpid"
    c1=$c u1=$u
    switches "$cpid"
    x1=$cs
    ticks "$spid"
    s1=$c
    tcpstat
    a1=$ao f1=$af
    cpustat
    b1=$busy g1=$total
    now
    m1=$t
    pause "$secs"
    ticks "$dpid"
    p2=$c
    ticks "$cpid"
    c2=$c u2=$u
    switches "$cpid"
    x2=$cs
    ticks "$spid"
    s2=$c
    tcpstat
    cpustat
    now
    m2=$t
    threads=$(grep -s '^Threads:' "/proc/$cpid/status" | tr -dc 0-9)
    entries
    ee=$e
    dests
    if [ -z "$p2" ] || [ -z "$c2" ]; then
        echo "$run: daemon or checker gone during the measurement; log:" >&2
        tail -n 20 "$log" >&2
        echo "$out fail=died"
        exit 1
    fi
    wall_ms=$(((m2 - m1) / 1000))
    checks=$((ao - a1))
    cfails=$((af - f1))
    if [ "$daemon" = keepalived ]; then
        child_t=$((c2 - c1)) parent_t=$((p2 - p1)) warm_t=$((c1 + p1))
    else
        child_t=$((p2 - p1)) parent_t=0 warm_t=$p1
    fi
    logsum
    stop
    echo "$out hz=$hz wall_ms=$wall_ms child_t=$child_t parent_t=$parent_t" \
        "warm_t=$warm_t user_t=$((u2 - u1)) switches=$((${x2:-0} - ${x1:-0})) server_t=$((s2 - s1)) checks=$checks connfails=$cfails" \
        "guest_busy_pct=$(((busy - b1) * 100 / (total - g1))) threads=${threads:-?}" \
        "entries_warm=$ew entries_end=$ee dests_end=$nd logfails=$fails $stopf"
    ;;
alpha)
    read -r q0 _ </proc/$$/schedstat
    now
    t0=$t
    start
    res=timeout polls=0 e=0 first=''
    while :; do
        pause 0.05
        now
        if ((t - t0 > limit * 1000000)); then break; fi
        if ! kill -0 "$dpid" 2>/dev/null; then
            res=died
            break
        fi
        entries
        polls=$((polls + 1))
        [ -n "$first" ] || [ "$e" -le "$nvs" ] || first=$(((t - t0) / 1000))
        if [ "$e" -eq "$expected" ]; then
            res=ok
            break
        fi
    done
    full_ms=$(((t - t0) / 1000))
    read -r q1 _ </proc/$$/schedstat
    child
    ticks "$dpid"
    p=$c
    ticks "$cpid"
    cc=$c
    [ "$res" = ok ] || full_ms=$res
    # The count above is one non-atomic read; confirm (forks, untimed).
    dests
    entries
    ee=$e
    if [ "$res" != ok ]; then
        echo "$run: $res with $e of $expected entries after $(((t - t0) / 1000)) ms; log tail:" >&2
        tail -n 6 "$log" | sed 's/^/    /' >&2
    fi
    [ "$daemon" = keepalived ] || cc=0
    logsum
    stop
    echo "$out hz=$hz full_ms=$full_ms first_ms=${first:-none} polls=$polls poll_cpu_ms=$(((q1 - q0) / 1000000))" \
        "cpu_t=$((${p:-0} + ${cc:-0})) dests=$nd entries=$ee logfails=$fails $stopf"
    ;;
syscalls)
    # The checker's system calls per probe over SECS s, counted by strace -c
    # attached after the warm-up (every thread: -f with -p). Tracing slows
    # the daemon down: this phase counts calls, it does not time anything.
    start
    pause "$warm"
    child
    if [ -z "$cpid" ] || ! kill -0 "$cpid" 2>/dev/null; then
        echo "$run: daemon or checker gone during the warm-up; log:" >&2
        tail -n 20 "$log" >&2
        echo "$out fail=died"
        exit 1
    fi
    tcpstat
    a1=$ao
    strace -f -c -q -p "$cpid" -o /tmp/strace.txt 2>/tmp/strace.err &
    tpid=$!
    pause "$secs"
    tcpstat
    checks=$((ao - a1))
    kill -INT "$tpid"
    wait "$tpid"
    logsum
    stop
    # strace -c: "% time seconds usecs/call calls [errors] syscall", then a
    # "total" line. Blocking waits (futex, epoll_wait, ...) are counted as
    # calls like any other.
    calls=$(awk '$NF != "syscall" && $NF != "total" && $4 ~ /^[0-9]+$/ { n += $4 } END { print n + 0 }' /tmp/strace.txt)
    top=$(awk '$NF != "syscall" && $NF != "total" && $4 ~ /^[0-9]+$/ { print $4, $NF }' /tmp/strace.txt |
        sort -rn | head -n 12 | awk '{ printf "%s%s:%s", (NR > 1 ? "," : ""), $2, $1 }')
    [ -s /tmp/strace.txt ] || { echo "$run: strace wrote nothing:" >&2; cat /tmp/strace.err >&2; }
    echo "$out checks=$checks calls=$calls top=${top:-none} logfails=$fails $stopf"
    ;;
*)
    echo "guest.sh: unknown phase $phase" >&2
    exit 2
    ;;
esac
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
exit 0

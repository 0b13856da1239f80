#!/bin/bash
# Guest half of scripts/bench-director: one phase of one repetition, run by
# scripts/bench/driver.sh as `ip netns exec NS bash director.sh PHASE REP N M`
# (a fresh network namespace per phase: an empty table and dest trash list).
#
# Phases:
#   ipvsdir     the daemon as a user runs it (ipvsdir -f FILE -n -l, state
#               files under /tmp): (a) start -> table complete, then (b)
#               SIGHUP with one weight changed -> the change in the kernel,
#               the ipvsadm -Sn diff around it, and the stop
#   keepalived  the same for keepalived -n -l (its checker child does the work)
#   apply_once  ipvsdir --apply-once of the same file, and ipvsdir's start-up
#               and config load alone (references)
#   ipvsdir_b, apply_once_b   the same with the binary ipvsdir-b (another
#               build measured in the same run: bench-director --compare)
# BENCH_MODE=check runs both daemons with -C (checker only).
#
# Prints one line per measurement on stdout:
#   R <name> <rep> <microseconds|fail|timeout|died> [key=value]...
#   D <tool> <rep> <line of the ipvsadm -Sn diff around the SIGHUP>
# and anything unexpected on stderr.
#
# The timing is done by bench-watch (scripts/bench/watch.rs), a compiled
# poller: a bash poll loop costs ~5 ms of CPU a poll under TCG, a quarter of
# the one vCPU at 20 ms, taken from the tool measured.  Every 20 ms it reads
# the CPU time the tool's process tree has used (its threads' and children's
# /proc/.../schedstat, kept open).
# - (a) table complete: reading the whole table costs tens to hundreds of ms
#   under TCG once it is large, and is not atomic; so the load ends at the
#   last poll that saw the tree use CPU (an upper bound, <= one interval
#   late), and only once the tree has sat idle for an interval is
#   /proc/net/ip_vs read and the result accepted if every entry is there.
# - (b) the SIGHUP's change in the kernel: the real server changed is the
#   first one /proc/net/ip_vs lists after the load (the first service in the
#   kernel's hash order, which differs per netns); its weight shows in the
#   file's first lines, one short read, so that is read at every poll
#   whatever the tool does.  Work the tool does after the change (and
#   ipvsdir's drift re-read, should one follow) shows apart: the time until
#   the tree is idle again.
set -uo pipefail # no -e: a failed step is recorded and the rest still run

phase=$1 rep=$2 n=$3 m=$4
d=/work/bench
mode=${BENCH_MODE:-full}
limit_s=${BENCH_EVENT_LIMIT:-300} # give up waiting for one event
expected=$((n + n * m))
live=/tmp/live$rep.conf # the file the daemon runs (SIGHUP re-reads it)

now() { t=${EPOCHREALTIME/./}; }
exe() { [ "$1" = ipvsdir_b ] && echo ipvsdir-b || echo ipvsdir; }

[ -p /tmp/bench.fifo ] || mkfifo /tmp/bench.fifo
exec 7<>/tmp/bench.fifo
pause() { read -r -t "$1" -u 7 _ || true; }

# One read of /proc/net/ip_vs: e = services + dests.
table() {
    local -a l
    mapfile -t l </proc/net/ip_vs
    e=$((${#l[@]} - 3))
}

# The first real server of the first service in /proc/net/ip_vs: tvip trip
# (dotted quads), thex (its address in the file's hex).
pick_target() {
    local -a l
    local i hs='' hd=''
    local re_s='^(TCP|UDP|SCTP) +([0-9A-F]{8}):0050 ' re_d='^ +-> ([0-9A-F]{8}):0050 '
    mapfile -n 64 -t l </proc/net/ip_vs
    for ((i = 3; i < ${#l[@]}; i++)); do
        if [ -z "$hs" ]; then
            [[ ${l[i]} =~ $re_s ]] && hs=${BASH_REMATCH[2]}
        elif [[ ${l[i]} =~ $re_d ]]; then
            hd=${BASH_REMATCH[1]}
            break
        fi
    done
    [ -n "$hd" ] || return 1
    tvip=$(printf '%d.%d.%d.%d' 0x${hs:0:2} 0x${hs:2:2} 0x${hs:4:2} 0x${hs:6:2})
    trip=$(printf '%d.%d.%d.%d' 0x${hd:0:2} 0x${hd:2:2} 0x${hd:4:2} 0x${hd:6:2})
    thex=$hd
}

# watch_arm MODE ARGS...: start bench-watch, which waits for watch_go.
watch_arm() {
    rm -f /tmp/watch.fifo
    mkfifo /tmp/watch.fifo
    WATCH_LIMIT_S=$limit_s bench-watch "$@" </tmp/watch.fifo >/tmp/watch.out 2>&1 &
    wpid=$!
    exec 8>/tmp/watch.fifo
    pause 0.3 # let it start (and block reading)
}
# watch_go PID: the event has just happened (t0 is set): watch PID from t0.
watch_go() {
    echo "$1 $t0" >&8
    exec 8>&-
}
# watch_wait: its result -> res at idle wcpu wself polls checks entries w.
watch_wait() {
    local line='' kv
    wait "$wpid"
    read -r line </tmp/watch.out
    res=fail at='' idle='' wcpu='' wself='' polls='' checks='' entries='' w=''
    for kv in $line; do
        case $kv in
        res=*) res=${kv#*=} ;; at=*) at=${kv#*=} ;; idle=*) idle=${kv#*=} ;;
        cpu=*) wcpu=${kv#*=} ;; self=*) wself=${kv#*=} ;; polls=*) polls=${kv#*=} ;;
        checks=*) checks=${kv#*=} ;; entries=*) entries=${kv#*=} ;; w=*) w=${kv#*=} ;;
        esac
    done
    [ "$res" != fail ] || echo "bench-watch: '$line'" >&2
}

# BENCH_PERF=1 (bench-director --perf): perf records the whole guest
# (realtime clock, to line samples up with the daemon's log) around (a) and
# (b) into /results/TOOL.N.M.REP.{load,hup}.data.  It costs CPU: the times
# of such a run are not comparable with others.
perf_on() {
    [ -n "${BENCH_PERF:-}" ] || return 0
    perf record -a -k realtime -F "${BENCH_PERF_FREQ:-997}" -o "/results/$tool.$n.$m.$rep.$1.data" \
        8>&- >"/tmp/perf.$1.out" 2>&1 &
    perfpid=$!
    pause 2 # perf sets up
}
perf_off() {
    [ -n "${BENCH_PERF:-}" ] || return 0
    kill -INT "$perfpid"
    wait "$perfpid"
}

# stop PID NAME: SIGTERM, wait (at most 300 s), then SIGKILL.
stop() {
    local pid=$1 name=$2 i rc=''
    now
    t0=$t
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 3000; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        pause 0.1
    done
    now
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        echo "R stop_$name $rep timeout"
        wait "$pid" 2>/dev/null
        return
    fi
    wait "$pid"
    rc=$?
    dt=$((t - t0))
    table
    echo "R stop_$name $rep $dt rc=$rc entries=$e"
}

# Where ipvsdir's time went, from the timestamps of its own log lines
# (tracing: UTC, microseconds; the same clock as $EPOCHREALTIME), as
# consecutive segments in us; the last one ends where the poller saw the
# daemon go idle.
#  (a) start_parse: process start, config load ("Starting ipvsdir");
#      setup_plan: runtime, threads, config copies, probe plan ("Starting
#      healthcheckers"); table: the desired table, the kernel read, the diff,
#      the operations and their log (the last "IPVS:" line); ready: the
#      owned file, VRRP's start ("ipvsdir ready"); after: the rest until idle.
#  (b) signal: SIGHUP -> "Reloading"; load_copy: config load and the copies
#      handed to the VRRP thread and the checkers (the VRRP thread's "VRRP:
#      reloaded"; none with -C); checkers: their reload, old and new desired
#      tables, probe plan, probe tasks ("Reloaded healthcheckers"); apply:
#      desired table, diff, the operation and its log line; after: the rest
#      until idle (copies, health report).
phases() {
    local day=86400000000
    awk -v tool="$2" -v ta=$((ta % day)) -v tb=$((${tb:-$ta} % day)) -v da="${da:-x}" -v db="${db:-x}" -v rep="$rep" '
    function tod(s) { return ((substr(s, 12, 2) * 60 + substr(s, 15, 2)) * 60 + substr(s, 18, 9)) * 1000000 }
    function seg(a, b) { if (a == "" || b == "") return "na"; d = b - a; if (d < -43200e6) d += 86400e6; return int(d) }
    $1 !~ /^[0-9][0-9][0-9][0-9]-/ { next }
    /Reloading / { if (!r) rl = tod($1); r = 1; next }
    /Starting ipvsdir:/ && !r { parsed = tod($1) }
    /Starting healthcheckers/ && !r { hc = tod($1) }
    /IPVS: / && !r { iN = tod($1) }
    /ipvsdir ready/ && !r { rd0 = tod($1) }
    /VRRP: reloaded/ && r { if (vr == "") vr = tod($1) }
    /Reloaded healthcheckers/ && r { rd = tod($1) }
    /IPVS: ipvsadm/ && r { if (o1 == "") o1 = tod($1) }
    END {
        if (parsed == "") parsed = hc # -C logs no "Starting ipvsdir"
        aend = (da ~ /^[0-9]+$/) ? ta + da : ""
        bend = (db ~ /^[0-9]+$/) ? tb + db : ""
        if (rd0 == "") rd0 = iN # -C: no VRRP to start
        printf "R ph_load_%s %s 0 start_parse=%s setup_plan=%s table=%s ready=%s after=%s\n", tool, rep,
            seg(ta, parsed), seg(parsed, hc), seg(hc, iN), seg(iN, rd0), seg(rd0, aend)
        cr = (vr == "") ? rl : vr # -C has no VRRP thread: all of it in checkers
        printf "R ph_hup_%s %s 0 signal=%s load_copy=%s checkers=%s apply=%s after=%s\n", tool, rep,
            seg(tb, rl), seg(rl, vr), seg(cr, rd), seg(rd, o1), seg(o1, bend)
    }' "$1"
}

# The daemon phase of tool $1 (ipvsdir|ipvsdir_b|keepalived).
daemon() {
    local tool=$1 pid log=/tmp/$1$rep.log
    local -a cmd
    cp "$d/bench.$n.$m.conf" "$live"
    rm -f /tmp/own$rep.state
    case $tool in
    ipvsdir | ipvsdir_b)
        # The full daemon (no vrrp_instance: VRRP idles) or -C.
        cmd=("$(exe "$tool")" -f "$live" -n -l
            --owned-state /tmp/own$rep.state --control-socket /tmp/ctl$rep.sock
            --vrrp-state /tmp/vrrp$rep.json
            -p /tmp/ipvsdir$rep.pid)
        ;;
    keepalived)
        # Full keepalived: without vrrp_instance it starts only its checker
        # child.  Per-rep pid files so no earlier instance blocks it.
        cmd=(keepalived -f "$live" -n -l -G -p /tmp/ka$rep.pid -c /tmp/kac$rep.pid
            -r /tmp/kav$rep.pid -b /tmp/kab$rep.pid)
        ;;
    esac
    [ "$mode" != check ] || cmd+=(-C)
    # (a) start -> table complete
    perf_on load
    watch_arm load "$expected"
    now
    t0=$t
    "${cmd[@]}" 8>&- >"$log" 2>&1 &
    pid=$!
    watch_go "$pid"
    watch_wait
    perf_off
    ta=$t0 tb='' da='' db=''
    [ "$res" = ok ] && da=$at || at=$res
    echo "R load_$tool $rep $at entries=$entries cpu=${wcpu}ms poll_cpu=${wself}ms polls=$polls checks=$checks"
    if [ "$res" != ok ]; then
        echo "$tool rep $rep: load $res with $entries of $expected entries; log tail:" >&2
        tail -n 20 "$log" >&2
        stop "$pid" "$tool"
        return
    fi
    # Let it finish whatever follows the last add (1 s idle), then the
    # table before, the target, and the file with its weight 1 -> 2.
    watch_arm quiet 1
    now
    t0=$t
    watch_go "$pid"
    watch_wait
    ipvsadm -S -n | sort >/tmp/before$rep
    if ! pick_target; then
        echo "$tool rep $rep: no real server in the first lines of /proc/net/ip_vs" >&2
        stop "$pid" "$tool"
        return
    fi
    sed "/^    real_server ${trip//./\\.} 80 {\$/{n;s/weight 1\$/weight 2/;}" \
        "$d/bench.$n.$m.conf" >"$live"
    if [ "$tool" != keepalived ]; then
        # The drift re-read runs every --drift-interval (10 s) from the end
        # of the load: wait for one (its length is a figure of its own) and
        # send the SIGHUP right after it, so that every repetition starts
        # (b) at the same phase of that timer.
        watch_arm burst 15
        now
        t0=$t
        watch_go "$pid"
        watch_wait
        echo "R drift_$tool $rep $([ "$res" = ok ] && echo "$at" || echo "$res") cpu=${wcpu}ms"
    fi
    # (b) SIGHUP -> the changed weight in the kernel
    perf_on hup
    watch_arm weight "$thex" 2
    now
    t0=$t
    kill -HUP "$pid"
    watch_go "$pid"
    watch_wait
    perf_off
    tb=$t0
    [ "$res" = ok ] && db=$idle || at=$res
    echo "R hup_$tool $rep $at w=$w idle_at=$idle cpu=${wcpu}ms poll_cpu=${wself}ms polls=$polls"
    if [ "$res" != ok ]; then
        echo "$tool rep $rep: reload $res (weight '$w' of $trip); log tail:" >&2
        tail -n 20 "$log" >&2
    fi
    watch_arm quiet 1
    now
    t0=$t
    watch_go "$pid"
    watch_wait
    ipvsadm -S -n | sort >/tmp/after$rep
    # Exactly one line may differ: the target's, -w 1 -> -w 2.
    local removed=0 added=0 line ok=0
    diff -U0 /tmp/before$rep /tmp/after$rep >/tmp/diff$rep # (no /dev/fd here)
    while IFS= read -r line; do
        case $line in
        ---* | +++* | @@*) continue ;;
        -*) removed=$((removed + 1)); echo "D $tool $rep $line" ;;
        +*) added=$((added + 1)); echo "D $tool $rep $line" ;;
        esac
    done </tmp/diff$rep
    grep -qx -- "-a -t $tvip:80 -r $trip:80 -m -w 1" /tmp/before$rep &&
        grep -qx -- "-a -t $tvip:80 -r $trip:80 -m -w 2" /tmp/after$rep &&
        [ "$removed" -eq 1 ] && [ "$added" -eq 1 ] && ok=1
    echo "R diff_$tool $rep 0 removed=$removed added=$added target=$ok"
    stop "$pid" "$tool"
    [ -z "${BENCH_PERF:-}" ] || cp "$log" "/results/$tool.$n.$m.$rep.log"
    [ "$tool" = keepalived ] || phases "$log" "$tool"
    grep -iE 'error|fail|warn' "$log" | grep -v 'Gained quorum' | head -n 5 |
        sed "s/^/$tool rep $rep log: /" >&2
}

case $phase in
ipvsdir | ipvsdir_b | keepalived)
    daemon "$phase"
    ;;
apply_once | apply_once_b)
    tool=ipvsdir sfx=''
    [ "$phase" = apply_once ] || tool=ipvsdir_b sfx=_b
    x=$(exe $tool)
    cp "$d/bench.$n.$m.conf" "$live"
    now
    t0=$t
    "$x" -f "$live" --apply-once --owned-state /tmp/own$rep.state 2>/tmp/once.err
    rc=$?
    now
    dt=$((t - t0))
    table
    [ "$rc" -eq 0 ] || { echo "apply_once rep $rep: exit $rc" >&2; tail -n 5 /tmp/once.err >&2; }
    echo "R load_apply_once$sfx $rep $dt rc=$rc entries=$e"
    # The one-shot parts, on the loaded table: process start-up alone, and
    # with the config load (what every daemon start and SIGHUP pays).
    for step in "startup --version" "parse -t -f $live"; do
        set -- $step
        name=$1
        shift
        now
        t0=$t
        "$x" "$@" >/dev/null 2>&1
        rc=$?
        now
        echo "R ${name}_$tool $rep $((t - t0)) rc=$rc"
    done
    ;;
*)
    echo "director.sh: unknown phase $phase" >&2
    exit 2
    ;;
esac
exit 0

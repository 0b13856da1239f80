# shellcheck shell=dash disable=SC2086 # fixed addresses and paths, no spaces
# Sourced by e2e.sh (`sh e2e.sh handoff [PART...]`): issue 11, a planned
# handoff that loses no request through the VIP (tests/vm_handoff.rs).
# Parts (default all, in this order):
#   dr      the LVS-DR pair (tests/fixtures/handoff/dr.conf)
#   nat     the LVS-NAT pair (nat.conf)
#           each: a stream of requests through the VIP (vip_client, 20/s, one
#           new connection each, 100-300 ms on the real server), SIGTERM to
#           the MASTER director, the stream goes on until 4 s after the
#           backup took over.
#   reload  the LVS-NAT pair with three virtual servers (reload.conf);
#           a reload drops the one on port 8080 while requests stream to the
#           other two and slow requests (4 s) to port 8080 are in flight.
# Each part runs with ipvsdir, then with keepalived 2.2.7 in a fresh lab of
# the same shape. Both load the same configuration file, as production runs
# them: `-f CONF -i dN -n -l`, lvs_sync_daemon on.
#
# Every real server is a slow application server (`vip_client serve` on
# :80): /slow/MS answers after MS ms with the server's name, /status (the
# health checks) at once. (nginx in front of it, as in the other scenarios,
# would cost this one-CPU emulated guest a third more per request: the
# stream would not keep its rate.)
#
# Sections (read by tests/vm_handoff.rs): "H IMPL LAB" (key: value lines),
# "H IMPL LAB requests" (vip_client's lines), "H IMPL LAB watch" (the
# timeline, `vip_client watch`), "H IMPL LAB before" / "... after"
# (tables, sync daemons), "R IMPL ..." likewise for the reload, "log ..."
# the directors' logs.
#
# Env (by hand): HIMPLS="keepalived ipvsdir" other implementations or order;
# HTOP=1 a `top` snapshot on stderr while each stream runs (where the one
# emulated CPU goes).
H=/work/handoff # the fixtures (tests/fixtures/handoff)
GRACE=8         # --drain-grace of ipvsdir in these runs
RATE=20         # requests a second

# ---- labs --------------------------------------------------------------------
# The anchor of a namespace: a process whose /proc/PID/net is that
# namespace's (the watcher reads it; the daemons come and go).
anchor() {
    ip netns exec "$1" sleep 1000 &
    echo $! >"/tmp/$1.anchor"
}
apid() { cat "/tmp/$1.anchor"; }
# slow_rs NS NAME: the real server, `vip_client serve` on :80: /slow/MS
# answers after MS ms, /status (the health checks) at once.
slow_rs() {
    ip netns exec "$1" vip_client serve --listen 0.0.0.0:80 --name "$2" --secs 900 \
        2>>"/tmp/rs-$2.log" &
}
dr_lab() {
    local i
    mkns client d1 d2 rs1 rs2
    mkbr lan
    plug client eth0 lan 192.168.20.2/24
    plug d1 eth0 lan 192.168.20.11/24
    plug d2 eth0 lan 192.168.20.12/24
    director_ns d1
    director_ns d2
    for i in 1 2; do
        ip netns exec rs$i sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
        plug rs$i eth0 lan 192.168.20.2$i/24
        ip -n rs$i addr add 192.168.20.100/32 dev lo
        slow_rs rs$i rs$i
    done
    wait_for 10 ip netns exec rs2 sh -c 'netstat -ltn | grep -q ":80 "'
    for i in client d1 d2 rs1; do anchor $i; done
    LAB_BRIDGES=lan LAB_NS="client d1 d2 rs1 rs2"
    say "DR lab up"
}
hnat_lab() {
    local i
    mkns client d1 d2 rs1 rs2 rs3
    mkbr brx
    mkbr bri
    plug client eth0 brx 192.168.10.2/24
    plug d1 eth0 brx 192.168.10.11/24
    plug d2 eth0 brx 192.168.10.12/24
    plug d1 eth1 bri 10.0.0.2/24
    plug d2 eth1 bri 10.0.0.3/24
    director_ns d1
    director_ns d2
    for i in 1 2 3; do
        plug rs$i eth0 bri 10.0.0.1$i/24
        ip -n rs$i route add default via 10.0.0.1
        slow_rs rs$i rs$i
    done
    wait_for 10 ip netns exec rs3 sh -c 'netstat -ltn | grep -q ":80 "'
    for i in client d1 d2 rs1; do anchor $i; done
    LAB_BRIDGES="brx bri" LAB_NS="client d1 d2 rs1 rs2 rs3"
    say "NAT lab up"
}
# Everything of the lab goes: processes, namespaces (with their IPVS tables
# and connections), bridges, state files.
lab_down() {
    local n b
    for n in $LAB_NS; do
        ip netns pids $n | xargs -r kill -9
    done
    sleep 0.2
    for n in $LAB_NS; do ip netns del $n; done
    for b in $LAB_BRIDGES; do ip link del $b; done
    rm -rf /tmp/d1.* /tmp/d2.* /tmp/*.anchor /tmp/h.stop /tmp/w.stop
}

# ---- directors ---------------------------------------------------------------
# hstart IMPL NS CONF: the director daemon in NS, as production runs it; its
# pid in /tmp/NS.pid, "EXIT_STATUS UPTIME" in /tmp/NS.exit when it ends.
hstart() {
    local impl ns conf
    impl=$1 ns=$2 conf=$3
    rm -f "/tmp/$ns.pid" "/tmp/$ns.exit"
    (
        case $impl in
        ipvsdir)
            ip netns exec "$ns" ipvsdir -f "$conf" -i "$ns" -n -l \
                --vrrp-state "/tmp/$ns.vrrp.json" --health-state "/tmp/$ns.health.json" \
                --owned-state "/tmp/$ns.owned" --control-socket "/tmp/$ns.sock" \
                --pid "/tmp/$ns.ipvsdir.pid" --drain-grace $GRACE 2>>"/tmp/$ns.log" &
            ;;
        keepalived)
            ip netns exec "$ns" keepalived -f "$conf" -i "$ns" -n -l -D \
                -p "/tmp/$ns.ka.pid" -r "/tmp/$ns.kav.pid" -c "/tmp/$ns.kac.pid" \
                >>"/tmp/$ns.log" 2>&1 &
            ;;
        esac
        p=$!
        echo $p >"/tmp/$ns.pid"
        wait $p
        rc=$?
        read -r t _ </proc/uptime
        echo "$rc $t" >"/tmp/$ns.exit"
    ) &
    wait_for 5 test -s "/tmp/$ns.pid" || die "$impl did not start in $ns"
}
hpid() { cat "/tmp/$1.pid"; }
exited() { test -s "/tmp/$1.exit"; }
holds_all() { # NS VIP...
    local n a
    n=$1
    shift
    for a; do has_addr $n $a || return 1; done
}
holds_none() {
    local n a
    n=$1
    shift
    for a; do has_addr $n $a && return 1; done
    return 0
}
# table_has NS N: the table holds N real servers with weight > 0.
table_has() { [ "$(dests $1 | awk '$3 > 0' | wc -l)" -eq "$2" ]; }
# hpair IMPL CONF DESTS VIP...: d1 up and MASTER (holds the VIPs, its table
# complete: DESTS real servers), then d2 up and BACKUP (table complete, no
# VIP, 3 s of d1's adverts heard). Fails (1) saying why in HWHY.
hpair() {
    local impl conf want
    impl=$1 conf=$2 want=$3
    shift 3
    rm -f /tmp/d1.log /tmp/d2.log
    HWHY=''
    hstart $impl d1 $conf
    wait_for 30 holds_all d1 "$@" || HWHY="d1 does not hold $*"
    [ -n "$HWHY" ] || wait_for 20 table_has d1 $want || HWHY="d1's table is not complete"
    [ -n "$HWHY" ] || hstart $impl d2 $conf
    [ -n "$HWHY" ] || wait_for 20 table_has d2 $want || HWHY="d2's table is not complete"
    [ -n "$HWHY" ] || sleep 3
    [ -n "$HWHY" ] || holds_none d2 "$@" || HWHY="d2 holds a VIP"
    if [ -n "$HWHY" ]; then
        say "$impl pair not up: $HWHY"
        return 1
    fi
    say "$impl pair up"
}
# not_up NAME IMPL LAB: the run's section says why it did not run; the logs.
not_up() {
    sec "$1"
    echo "not run: the pair did not come up: $HWHY"
    sec "$1 before"
    hstate
    for n in d1 d2; do
        hstop $n
        sec "log $2 $3 $n"
        cat /tmp/$n.log
    done
}
hstop() { # NS: SIGTERM, wait (bounded) for the exit
    [ -s /tmp/$1.pid ] || return 0
    exited $1 && return 0
    kill -TERM "$(hpid $1)" 2>/dev/null
    wait_for 10 exited $1 || kill -KILL "$(hpid $1)" 2>/dev/null
}
# The state of both directors: tables, sync daemons, connection counts.
hstate() {
    local n
    for n in d1 d2; do
        echo "--- $n ipvsadm -Ln"
        ip netns exec $n ipvsadm -Ln
        echo "--- $n ipvsadm -L --daemon"
        ip netns exec $n ipvsadm -L --daemon
        echo "--- $n connections: $(ip netns exec $n ipvsadm -Lnc | awk 'NR > 2' | wc -l)"
        echo "--- $n addresses"
        ip -n $n -o -4 addr show | awk '{ print $2, $4 }'
    done
}
# stream_bg LOG SUMMARY ARGS...: vip_client in the client namespace.
stream_bg() {
    local log sum
    log=$1 sum=$2
    shift 2
    ip netns exec client vip_client stream --log "$log" "$@" >"$sum" 2>&1 &
}

# macs NS: the MAC addresses of NS's links, comma-separated.
macs() {
    ip -n "$1" -o link show | awk '
        { for (i = 1; i < NF; i++) if ($i == "link/ether") m = m (m == "" ? "" : ",") $(i + 1) }
        END { print m }'
}
# watch_bg "VIP..." [ARGS]: the timeline (`vip_client watch`, every 50 ms)
# into /tmp/h.watch until /tmp/w.stop exists.
watch_bg() {
    local vips macs1 macs2
    vips=$(echo "$1" | tr ' ' ,)
    shift
    macs1=$(macs d1) macs2=$(macs d2)
    vip_client watch --out /tmp/h.watch --stop-file /tmp/w.stop --secs 120 --every-ms 50 \
        --vips "$vips" --d1 "$(apid d1)" --d2 "$(apid d2)" --client "$(apid client)" \
        --d1-mac "$macs1" --d2-mac "$macs2" "$@" &
}

# ---- the handoff ---------------------------------------------------------------
# handoff IMPL LAB CONF DESTS VIP...: the pair up, the stream, SIGTERM to the
# master d1, the stream until 4 s after d2 took over and the client's ARP
# entry moved to it.
handoff() {
    local impl lab conf want name t0 tsig tex rc gwargs wpid cpid p n took
    impl=$1 lab=$2 conf=$3 want=$4
    shift 4
    name="H $impl $lab"
    say "$name: start"
    t0=$(now)
    if ! hpair $impl $conf $want "$@"; then
        not_up "$name" $impl $lab
        return
    fi
    sec "$name before"
    hstate
    gwargs=''
    [ "$lab" = nat ] && gwargs="--gw $(apid rs1):10.0.0.1"
    rm -f /tmp/h.stop /tmp/w.stop /tmp/h.req /tmp/h.watch /tmp/h.conns-*
    stream_bg /tmp/h.req /tmp/h.sum --target vs="$1:80" --path '/slow/{ms}' --delay-ms 100-300 \
        --rate $RATE --secs 60 --count 1500 --timeout-ms 2000 --stop-file /tmp/h.stop
    cpid=$!
    # shellcheck disable=SC2086 # gwargs: two words or none
    watch_bg "$*" $gwargs
    wpid=$!
    sleep 1
    [ -n "${HTOP:-}" ] && top -b -n 2 -d 2 | awk '/^Mem:/ { n++ } n == 2' | head -n 25 >&2
    sleep 1
    # The backup learns the master's connections (the sync daemon).
    sec "$name sync before"
    for n in d1 d2; do
        echo "$n connections: $(ip netns exec $n ipvsadm -Lnc | awk 'NR > 2' | wc -l)"
    done
    sleep 2
    say "$name: SIGTERM to d1"
    p=$(hpid d1)
    read -r tsig _ </proc/uptime
    kill -TERM "$p"
    # Waits read the watcher's timeline (one grep a poll): forking `ip` in a
    # loop would take CPU from the daemons in the moments that matter.
    took="d2vip=1 arp=d2"
    [ "$lab" = nat ] && took="$took gw=d2"
    tex=never rc=none
    wait_for 20 grep -q "$took" /tmp/h.watch || say "$name: d2 did not take over"
    # Whose connections each director knows once d2 took over (the sync
    # daemon's work), to look up the failed requests' ports in.
    for n in d1 d2; do ip netns exec $n ipvsadm -Lnc >/tmp/h.conns-$n 2>&1; done
    if wait_for 20 exited d1; then
        read -r rc tex </tmp/d1.exit
        tex=$(elapsed "$tsig" "$tex")
    fi
    sleep 4
    touch /tmp/h.stop
    wait $cpid
    touch /tmp/w.stop
    wait $wpid
    sec "$name"
    echo "lab up: $(elapsed "$t0" "$tsig")"
    echo "signal: $tsig"
    echo "d1 exited after: $tex"
    echo "d1 exit status: $rc"
    echo "d1 holds a VIP now: $(holds_none d1 "$@" && echo no || echo yes)"
    echo "d2 holds the VIPs now: $(holds_all d2 "$@" && echo yes || echo no)"
    sec "$name requests"
    cat /tmp/h.req
    sec "$name watch"
    cat /tmp/h.watch
    sec "$name conns at takeover"
    for n in d1 d2; do
        echo "--- $n"
        cat /tmp/h.conns-$n
    done
    sec "$name after"
    hstate
    hstop d2
    sec "log $impl $lab d1"
    cat /tmp/d1.log
    sec "log $impl $lab d2"
    cat /tmp/d2.log
    say "$name: done in $(elapsed "$t0" "$(now)") s"
}

# ---- the reload ----------------------------------------------------------------
# One virtual server's real servers from `ipvsadm -Ln` (NS PORT):
# "present ADDR:PORT/WEIGHT ..." or "absent".
vs_dests() {
    ip netns exec $1 ipvsadm -Ln | awk -v vs="192.168.10.100:$2" '
        $1 == "TCP" { on = ($2 == vs); if (on) found = 1; next }
        on && $1 == "->" && $2 != "RemoteAddress:Port" { d = d " " $2 "/" $4 }
        END { if (found) print "present" d; else print "absent" }'
}
# reload_run IMPL: the pair with reload.conf (ports 80, 8080, 8081, 3 real
# servers each), the stream to 80 and 8081, 8 slow requests to 8080, then
# reload-vs-1.conf (8080 removed) and SIGHUP to both directors; the stream
# goes on until 2 s after 8080 left d1's table (bounded: --drain-grace +
# 12 s). The timeline (d1ipvs: services/real servers/weights) shows the
# drain (3/9/6) and the deletion (2/6/6).
reload_run() {
    local impl name t0 thup cpid lpid wpid n
    impl=$1
    name="R $impl"
    say "$name: start"
    t0=$(now)
    mkdir -p /tmp/h
    cp $H/nat-vrrp.conf $H/reload.conf /tmp/h/
    cp $H/reload-vs-0.conf /tmp/h/reload-vs.conf
    # 3 virtual servers x 3 real servers.
    if ! hpair $impl /tmp/h/reload.conf 9 192.168.10.100 10.0.0.1; then
        not_up "$name" $impl reload
        return
    fi
    sec "$name before"
    hstate
    rm -f /tmp/h.stop /tmp/w.stop /tmp/h.req /tmp/h.long /tmp/h.watch
    stream_bg /tmp/h.req /tmp/h.sum --target vs80=192.168.10.100:80 \
        --target vs8081=192.168.10.100:8081 --path '/slow/{ms}' --delay-ms 100-300 \
        --rate $RATE --secs 60 --count 1500 --timeout-ms 2000 --stop-file /tmp/h.stop
    cpid=$!
    watch_bg "192.168.10.100 10.0.0.1"
    wpid=$!
    sleep 3
    # 8 slow requests to the virtual server that goes, all in flight at the
    # reload: 4/s for 2 s, 4 s each.
    stream_bg /tmp/h.long /tmp/h.longsum --target vs8080=192.168.10.100:8080 \
        --path /slow/4000 --rate 4 --count 8 --secs 10 --timeout-ms 10000
    lpid=$!
    # The SIGHUP once all 8 are established through d1 (a slow guest may
    # start the client late; a request sent after the reload meets the
    # drain, weight 0, and is refused, which is not what this measures).
    wait_for 12 sh -c "[ \$(ip netns exec d1 ipvsadm -Lnc | grep -c 'ESTABLISHED.*:8080 ') -ge 8 ]" ||
        say "$name: the 8 slow requests are not all established"
    cp $H/reload-vs-1.conf /tmp/h/reload-vs.conf
    say "$name: SIGHUP"
    read -r thup _ </proc/uptime
    kill -HUP "$(hpid d1)" "$(hpid d2)"
    sleep 1.5
    sec "$name drain table"
    echo "8080 on d1: $(vs_dests d1 8080)"
    echo "8080 on d2: $(vs_dests d2 8080)"
    ip netns exec d1 ipvsadm -Ln
    wait $lpid
    wait_for $((GRACE + 12)) grep -q "d1ipvs=2/" /tmp/h.watch ||
        say "$name: 8080 still in d1's table"
    sleep 2
    touch /tmp/h.stop
    wait $cpid
    touch /tmp/w.stop
    wait $wpid
    sec "$name"
    echo "lab up: $(elapsed "$t0" "$thup")"
    echo "reload: $thup"
    for n in 80 8080 8081; do
        echo "$n on d1 now: $(vs_dests d1 $n)"
        echo "$n on d2 now: $(vs_dests d2 $n)"
    done
    echo "d1 holds the VIPs: $(holds_all d1 192.168.10.100 10.0.0.1 && echo yes || echo no)"
    sec "$name requests"
    cat /tmp/h.req
    sec "$name long"
    cat /tmp/h.long
    sec "$name watch"
    cat /tmp/h.watch
    sec "$name after"
    hstate
    hstop d1
    hstop d2
    sec "log $impl reload d1"
    cat /tmp/d1.log
    sec "log $impl reload d2"
    cat /tmp/d2.log
    say "$name: done in $(elapsed "$t0" "$(now)") s"
}

# ---- main ----------------------------------------------------------------------
shift # "handoff"
parts=${*:-dr nat reload}
sec "parts"
echo "$parts"
for part in $parts; do
    for impl in ${HIMPLS:-ipvsdir keepalived}; do
        tp=$(now)
        case $part in
        dr)
            dr_lab
            handoff $impl dr $H/dr.conf 2 192.168.20.100
            ;;
        nat)
            hnat_lab
            handoff $impl nat $H/nat.conf 3 192.168.10.100 10.0.0.1
            ;;
        reload)
            hnat_lab
            reload_run $impl
            ;;
        *) die "unknown part $part" ;;
        esac
        lab_down
        sec "time $part $impl"
        echo "seconds: $(elapsed "$tp" "$(now)")"
    done
done

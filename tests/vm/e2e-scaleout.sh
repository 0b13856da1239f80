# shellcheck shell=dash disable=SC2086 # fixed addresses and paths, no spaces
# Sourced by e2e.sh (`sh e2e.sh scaleout`): issue 17, three active directors
# behind a router's ECMP, each announcing the VIP over BGP while its checks
# pass (tests/vm_scaleout.rs, scripts/bench-scaleout).
#
#   client 10.1.0.2 --cli-- router 10.1.0.1 (BIRD 2: eBGP + BFD to every
#       director, one ECMP route per VIP, layer-4 multipath hash)
#   router 10.2.0.1 --core-- d1..d3 10.2.0.11-13 (ipvsdir + BIRD 2)
#                         -- rs1..rs3 10.2.0.21-23 (LVS-DR, VIP on lo)
#   VIP 10.99.0.1:80
#
# The directors run the shipped samples with this lab's addresses (sed
# below): conf/lvs-dr-announce.conf (mh + mh-port, sloppy_tcp, drain metric)
# and the director half of conf/bird2-announce.conf (BGP with BFD); the
# router runs that file's router half. Only timers differ: BGP's shortened
# for a quick start, BFD's lengthened for an emulated CPU (below).
#
# A client holds 300 long-lived connections through every scenario
# (`vip_client hold`: each exchanges a line with its real server every
# 3 s and must keep meeting the same one), and each scenario sends a
# stream of new requests (`vip_client stream`: 20/s, one connection each, no
# retries, 2 s timeout). Scenarios:
#   steady   all three announce: new flows per director and per real server
#   drain    SIGTERM to d2: drain metric (GRACEFUL_SHUTDOWN), withdraw,
#            release, exit
#   readd2   d2 started again
#   crash    d3 dies (kill -9 of everything on it, links down): time until
#            the router's route lost it
#   readd3   d3's links up, BIRD and ipvsdir started again
#   pair     the same real servers behind a keepalived 2.2.7 VRRP pair
#            (lvs_sync_daemon, as production runs it), the master killed
#            (kill -9, links down): how many held connections survive there
#
# Sections: "S NAME" (key: value lines per scenario: the hold counts before
# and after, the stream's summary, the router's next hops, ...), "table"
# (what bench-scaleout prints), "log NS".
SC=/work/scaleout # the fixtures (tests/fixtures/scaleout)
VIP=10.99.0.1
PVIP=10.2.0.100 # the keepalived pair's VIP
# BGP timers for a quick start.
TIMERS='keepalive time 3; connect delay time 1; connect retry time 2; error wait time 1, 5;'
# BFD: the shipped 100 ms x 3 is for hardware. Under TCG the guest runs
# 15-20x slower and stalls for hundreds of ms when the host is busy (CI runs
# other tests beside it): every session flapped at once. 200 ms x 5 here.
BFD='s/min rx interval 100 ms;/min rx interval 200 ms;/; s/min tx interval 100 ms;/min tx interval 200 ms;/; s/multiplier 3;/multiplier 5;/'

# ---- the router's view ---------------------------------------------------------
# hops: the router's next hops for the VIP, as BIRD sorts them,
# space-separated. One process per call: the guest has one emulated CPU, and
# a poll that forked a pipeline every 0.1 s starved the traffic it watched.
hops() {
    set -- $(ip -n router -o route show $VIP/32)
    _h=''
    while [ $# -gt 1 ]; do
        [ "$1" = via ] && _h="$_h${_h:+ }$2"
        shift
    done
    echo "$_h"
}
hops_are() { [ "$(hops)" = "$1" ]; }
ALL3="10.2.0.11 10.2.0.12 10.2.0.13"

# ---- BIRD ----------------------------------------------------------------------
# bird_start NS CONF: BIRD 2 in NS, logging to /tmp/NS.bird.log.
# Niced as a routing daemon should be: on the guest's emulated CPUs a
# director's start would otherwise delay BFD packets past the detection
# time and flap every session.
bird_start() {
    ip netns exec "$1" bird -f -c "$2" -s "/tmp/$1.bird.ctl" -P "/tmp/$1.bird.pid" \
        2>>"/tmp/$1.bird.log" &
    # (the guest's busybox has renice, not nice)
    renice -n -10 -p $! >/dev/null
}
director_bird() { # N: the director half of the shipped snippet for dN
    {
        echo 'log stderr all;'
        sed -n '1,/^# ---- the router/p' /work/bird2-announce.conf | sed \
            -e "s/192\.0\.2\.11/10.2.0.1$1/g" \
            -e 's/neighbor 192\.0\.2\.1 as/neighbor 10.2.0.1 as/' \
            -e "s/keepalive time 3;/$TIMERS/" -e "$BFD"
    } >"/tmp/d$1.bird"
}
router_bird() { # the router half, uncommented, with a third director
    {
        echo 'log stderr all;'
        sed -n '/^# router id 192\.0\.2\.1;/,$p' /work/bird2-announce.conf | sed \
            -e 's/^# \{0,1\}//' \
            -e 's/192\.0\.2\.1\([^0-9]\)/10.2.0.1\1/g' \
            -e 's/192\.0\.2\.1\([1-3]\)/10.2.0.1\1/g' \
            -e "s/keepalive time 3;/$TIMERS/" -e "$BFD"
        echo 'protocol bgp director3 from director { neighbor 10.2.0.13 as 65001; }'
    } >/tmp/router.bird
}

# ---- directors -----------------------------------------------------------------
director_conf() { # N: the shipped ipvsdir sample for dN
    sed -e "s/router_id director_1/router_id d$1/" \
        -e 's/203\.0\.113\.10/10.99.0.1/g' \
        -e 's/198\.51\.100\.2/10.2.0.2/g' \
        /work/lvs-dr-announce.conf >"/tmp/d$1.conf"
}
# so_start N: ipvsdir on dN (BIRD runs on).
so_start() {
    # A killed daemon's pid file is still there.
    rm -f "/tmp/d$1.exit" "/tmp/d$1.pid"
    (
        director d$1 "/tmp/d$1.conf"
        wait "$(dpid d$1)"
        rc=$?
        read -r t _ </proc/uptime
        echo "$rc $t" >"/tmp/d$1.exit"
    ) 2>/dev/null & # no "Killed" from this shell when the crash kills it
    wait_for 5 test -s "/tmp/d$1.pid" || die "ipvsdir did not start on d$1"
}

# ---- the lab -------------------------------------------------------------------
so_lab() {
    local i
    mkns client router d1 d2 d3 rs1 rs2 rs3
    mkbr cli
    mkbr core
    plug client eth0 cli 10.1.0.2/24
    ip -n client route add default via 10.1.0.1
    plug router eth0 cli 10.1.0.1/24
    plug router eth1 core 10.2.0.1/24
    ip netns exec router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
    for i in 1 2 3; do
        plug d$i eth0 core 10.2.0.1$i/24
        director_ns d$i
        # The VIP is on lo (static_ipaddress): no ARP answers for it here.
        ip netns exec d$i sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        plug rs$i eth0 core 10.2.0.2$i/24
        ip -n rs$i route add default via 10.2.0.1
        ip netns exec rs$i sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
        ip -n rs$i addr add $VIP/32 dev lo
        ip -n rs$i addr add $PVIP/32 dev lo
        ip netns exec rs$i vip_client serve --listen 0.0.0.0:80 --name rs$i --secs 1200 \
            2>>"/tmp/rs$i.log" &
    done
    router_bird
    bird_start router /tmp/router.bird
    for i in 1 2 3; do
        director_conf $i
        director_bird $i
        bird_start d$i "/tmp/d$i.bird"
        so_start $i
    done
    say "scale-out lab up"
}

# ---- measurements --------------------------------------------------------------
# hold_get FIELD: a field of the held connections' status line.
hold_get() { awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }' /tmp/hold.status 2>/dev/null; }
hold_line() { cat /tmp/hold.status 2>/dev/null; }
# conns NS: the IPVS connection counter of NS's virtual server (0 without one).
conns() {
    ip netns exec "$1" ipvsadm -Ln --stats -t "$2:80" 2>/dev/null |
        awk '$1 == "TCP" { print $3; f = 1 } END { if (!f) print 0 }'
}
# stream_bg NAME SECS: new requests to the VIP in the background, 20/s.
stream_bg() {
    rm -f "/tmp/$1.stop"
    ip netns exec client vip_client stream --target "vip=$3:80" --rate 20 --secs "$2" \
        --timeout-ms 2000 --count 10000 --stop-file "/tmp/$1.stop" --log "/tmp/$1.req" \
        >"/tmp/$1.sum" 2>&1 &
    _stream=$!
}
# stream_end NAME: stops the stream, waits for it (so not in a $(...)
# subshell), prints its summary and failure reasons.
stream_end() {
    touch "/tmp/$1.stop"
    wait "$_stream"
    echo "stream: $(grep '^summary all' "/tmp/$1.sum")"
    echo "reasons: $(grep '^reasons' "/tmp/$1.sum")"
    # The first failures, for whoever reads a failed run.
    awk '$6 == "fail" && n++ < 8 { print "fail " n ": " $0 }' "/tmp/$1.req"
}
# answers NAME: how many requests each real server answered.
answers() { awk '$6 == "ok" { n[$7]++ } END { for (k in n) printf "%s=%d ", k, n[k]; print "" }' "/tmp/$1.req"; }
# scenario_head NAME: the section and the hold counts before it.
scenario_head() {
    sec "S $1"
    echo "hold before: $(hold_line)"
    echo "hops before: $(hops)"
    _lost0=$(hold_get lost)
    hops_watch &
    _watch=$!
}
scenario_tail() {
    kill "$_watch"
    echo "hold after: $(hold_line)"
    echo "hops after: $(hops)"
    echo "lost: $(($(hold_get lost) - _lost0))"
}
# hops_watch: each change of the router's next hops, with its time and the
# held connections' counts then (a timeline for a failed run).
hops_watch() {
    local last now h
    last=$(hops)
    while :; do
        h=$(hops)
        if [ "$h" != "$last" ]; then
            read -r now _ </proc/uptime
            echo "hops at $now: $h | $(hold_line)"
            last=$h
        fi
        sleep 0.5
    done
}

# ---- scenarios -----------------------------------------------------------------
so_steady() {
    local i c0 c1 c2 c3
    scenario_head steady
    c1=$(conns d1 $VIP) c2=$(conns d2 $VIP) c3=$(conns d3 $VIP)
    stream_bg steady 10 $VIP
    wait "$_stream"
    echo "stream: $(grep '^summary all' /tmp/steady.sum)"
    echo "answers: $(answers steady)"
    for i in 1 2 3; do
        eval c0=\$c$i
        echo "d$i new conns: $(($(conns d$i $VIP) - c0))"
    done
    scenario_tail
}

so_drain() {
    local t0 t1
    scenario_head drain
    stream_bg drain 60 $VIP
    sleep 2
    read -r t0 _ </proc/uptime
    kill -TERM "$(dpid d2)"
    wait_for 30 not hops_are "$ALL3" || say "the router kept d2's path"
    read -r t1 _ </proc/uptime
    echo "router moved off d2 after: $(elapsed $t0 $t1) s"
    wait_for 40 test -s /tmp/d2.exit || die "ipvsdir on d2 did not exit after SIGTERM"
    read -r t1 _ </proc/uptime
    echo "d2 exit: $(cut -d' ' -f1 /tmp/d2.exit) after $(elapsed $t0 $t1) s"
    echo "d2 table after exit: $(ip netns exec d2 ipvsadm -Ln | grep -c '^TCP')"
    sleep 3
    stream_end drain
    scenario_tail
}

# so_readd N NAME: dN's ipvsdir (and, after a crash, its links and BIRD)
# back; the stream runs until the router has used all three for 8 s.
so_readd() {
    local t0 t1
    scenario_head "$2"
    stream_bg "$2" 90 $VIP
    read -r t0 _ </proc/uptime
    # After the crash: the links come back (with the addresses, the IPVS
    # table and the announced route the dead daemons left), then ipvsdir
    # (its first sync removes that route until its checks pass), then BIRD.
    [ "$2" = readd3 ] && revive_links d$1
    so_start $1
    [ "$2" = readd3 ] && bird_start d$1 "/tmp/d$1.bird"
    wait_for 60 hops_are "$ALL3" || say "d$1 is not back at the router"
    read -r t1 _ </proc/uptime
    echo "back at the router after: $(elapsed $t0 $t1) s"
    sleep 8
    stream_end "$2"
    scenario_tail
}

so_crash() {
    local t0 t1
    scenario_head crash
    stream_bg crash 60 $VIP
    sleep 2
    read -r t0 _ </proc/uptime
    kill_director d3
    # (kill_director's own wait cannot: ipvsdir is so_start's child.)
    wait_for 5 test -s /tmp/d3.exit || say "ipvsdir on d3 still there after kill -9"
    # Polled as fast as the guest can (each `ip` takes a few ms).
    wait_for 30 not hops_are "$ALL3" || say "the router kept d3's path"
    read -r t1 _ </proc/uptime
    echo "withdrawn at the router after: $(elapsed $t0 $t1) s"
    sleep 12
    stream_end crash
    scenario_tail
}

# The same held connections through a keepalived VRRP pair (k1 master, k2
# backup, lvs_sync_daemon) on the same real servers; the master dies.
so_pair() {
    local i t0 t1
    sec "S pair setup"
    hold_stop
    # The directors' held connections, closed by the client at the end: a
    # loss in the last scenario's final seconds shows here.
    echo "hold final: $(hold_line)"
    for i in 1 2 3; do ip netns pids d$i | xargs -r kill -9; done
    mkns k1 k2
    plug k1 eth0 core 10.2.0.31/24
    plug k2 eth0 core 10.2.0.32/24
    for i in 1 2; do
        director_ns k$i
        ip netns exec k$i keepalived -f $SC/pair.conf -i k$i -n -l -D \
            -p "/tmp/k$i.ka.pid" -r "/tmp/k$i.kav.pid" -c "/tmp/k$i.kac.pid" \
            >>"/tmp/k$i.log" 2>&1 &
        echo $! >"/tmp/k$i.pid"
        [ $i = 1 ] && { wait_for 30 has_addr k1 $PVIP || die "k1 did not take $PVIP"; }
    done
    wait_for 30 sh -c "ip netns exec k2 ipvsadm -L --daemon | grep -q backup" || say "k2 has no backup sync daemon"
    wait_for 30 sh -c "ip netns exec k1 ipvsadm -Ln | grep -c Route | grep -q 3" || say "k1's table is not complete"
    hold_bg pair $PVIP
    scenario_head pair
    stream_bg pair 60 $PVIP
    # The sync daemon sends a connection after its third packet, then every
    # 50: let the held connections be synced first, as in production.
    sleep 5
    read -r t0 _ </proc/uptime
    kill_director k1
    wait_for 30 has_addr k2 $PVIP || say "k2 did not take $PVIP"
    read -r t1 _ </proc/uptime
    echo "backup took the VIP after: $(elapsed $t0 $t1) s"
    sleep 12
    stream_end pair
    echo "backup synced conns: $(ip netns exec k2 ipvsadm -Lnc | grep -c ESTABLISHED)"
    scenario_tail
    hold_stop
}

# hold_bg NAME VIP: 300 held connections, until /tmp/hold.stop exists; waits
# until all have opened (or failed to).
hold_bg() {
    rm -f /tmp/hold.stop /tmp/hold.status
    ip netns exec client vip_client hold --target "$2:80" --status /tmp/hold.status \
        --conns 300 --every-ms 3000 --timeout-ms 10000 --secs 900 --stop-file /tmp/hold.stop \
        >"/tmp/hold-$1.out" 2>&1 &
    echo $! >/tmp/hold.pid
    wait_for 60 hold_opened || say "the held connections did not all open"
    sec "hold $1 opened"
    hold_line
}
# All 300 opened or failed to (fields 3 and 11 of the status line).
hold_opened() { [ "$(awk '{ print $3 + $11 }' /tmp/hold.status 2>/dev/null)" -ge 300 ] 2>/dev/null; }
hold_stop() {
    touch /tmp/hold.stop
    wait_for 20 not kill -0 "$(cat /tmp/hold.pid)"
}

# val KEY NAME: the value of "KEY: value" in scenario NAME's lines.
val() { awk -v k="$1: " 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' "/tmp/S.$2"; }
# A row of the table: scenario, held connections lost, requests failed, note.
row() { # NAME NOTE
    printf '%-8s %-10s %-16s %s\n' "$1" "$(awk '/^lost: / { print $2 }' "/tmp/S.$1")/300" \
        "$(awk '/^stream: / { print $9 "/" $5 }' "/tmp/S.$1")" "$2"
}

so_main() {
    local s
    so_lab
    wait_for 90 hops_are "$ALL3" || die "the router never had all three directors: $(hops)"
    say "the router has all three directors"
    hold_bg directors $VIP
    # Each scenario in this shell (its children are waited for here), its
    # lines kept for the table.
    so_steady >/tmp/S.steady
    so_drain >/tmp/S.drain
    so_readd 2 readd2 >/tmp/S.readd2
    so_crash >/tmp/S.crash
    so_readd 3 readd3 >/tmp/S.readd3
    so_pair >/tmp/S.pair
    cat /tmp/S.steady /tmp/S.drain /tmp/S.readd2 /tmp/S.crash /tmp/S.readd3 /tmp/S.pair
    sec "table"
    printf '%-8s %-10s %-16s %s\n' scenario "held lost" "requests failed" note
    row steady "new conns $(grep 'new conns' /tmp/S.steady | awk '{ printf "%s%s=%s", s, $1, $4; s = "," }')"
    row drain "the router moved off d2 after $(val 'router moved off d2 after' drain), ipvsdir exited after $(val 'd2 exit' drain | cut -d' ' -f3-)"
    row readd2 "d2 back at the router after $(val 'back at the router after' readd2)"
    row crash "withdrawn at the router $(val 'withdrawn at the router after' crash) after the crash (BFD)"
    row readd3 "d3 back at the router after $(val 'back at the router after' readd3)"
    row pair "keepalived VRRP pair, master killed: the backup took the VIP after $(val 'backup took the VIP after' pair)"
    for s in d1 d2 d3 router k1 k2; do
        sec "log $s"
        tail -n 60 "/tmp/$s.log" 2>/dev/null
        tail -n 30 "/tmp/$s.bird.log" 2>/dev/null
    done
    return 0
}
so_main

#!/bin/sh
# Runs inside the kernel VM (see tests/vm_e2e.rs): issue 6's end-to-end
# scenarios. Every node is a network namespace: a client, two directors d1/d2
# each running `ipvsdir -f CONF -i dN -n -l` (IPVS state is per namespace, so
# each director has its own table), and real servers running Debian's nginx.
#
#   sh e2e.sh nat|dr|reload|seeds     sources e2e-NAME.sh, which runs it
#   sh e2e.sh handoff [dr|nat|reload]...   (tests/vm_handoff.rs)
#   sh e2e.sh scaleout                     (tests/vm_scaleout.rs)
#
# Output: "=== NAME" sections that the Rust test reads; progress on stderr.
# Times are /proc/uptime seconds. Every wait is bounded in time and count.
set -u
# shellcheck disable=SC2034 # used by the scenario files
E=/work/e2e # the fixtures (tests/fixtures/e2e)

sec() { echo "=== $1"; }
now() {
    read -r _now _ </proc/uptime
    echo "$_now"
}
say() { echo "[$(now) $(date +%T)] $*" >&2; }
die() {
    say "FAILED: $*"
    # The daemons' and clients' logs, for whoever reads the failure.
    for _f in /tmp/*.log; do
        [ -f "$_f" ] || continue
        echo "--- $_f (last 40 lines)" >&2
        tail -n 40 "$_f" >&2
    done
    exit 1
}
# Seconds between two uptimes, as text with two decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---- waiting ---------------------------------------------------------------
# wait_for SECS CMD...: runs CMD every 0.1 s until it succeeds (0) or SECS
# pass (1).
wait_for() {
    local _lim _t _end _i
    _lim=$1
    shift
    read -r _t _ </proc/uptime
    _end=$((${_t%.*} + _lim))
    _i=0
    while ! "$@" >/dev/null 2>&1; do
        _i=$((_i + 1))
        read -r _t _ </proc/uptime
        if [ "${_t%.*}" -ge "$_end" ] || [ "$_i" -gt $((_lim * 50)) ]; then
            say "timed out after ${_lim}s waiting for: $*"
            return 1
        fi
        sleep 0.1
    done
}
not() { ! "$@"; }

# ---- topology --------------------------------------------------------------
mkns() {
    local _n
    for _n; do
        ip netns add "$_n" || die "netns $_n"
        ip -n "$_n" link set lo up
    done
}
# A bridge in the VM's root namespace; VRRP multicast is flooded, not snooped.
mkbr() {
    ip link add "$1" type bridge || die "bridge $1"
    echo 0 >"/sys/class/net/$1/bridge/multicast_snooping"
    ip link set "$1" up
}
# plug NS IF BRIDGE ADDR/LEN: a veth from NS (named IF there) onto BRIDGE.
plug() {
    # A previous lab's namespace is torn down asynchronously: its host-side
    # veth of the same name can outlive it for a moment ("File exists").
    ip link del "$1-$2" 2>/dev/null || true
    ip link add "$1-$2" type veth peer name "$2" netns "$1" || die "veth $1-$2"
    ip link set "$1-$2" master "$3" up
    ip -n "$1" addr add "$4" dev "$2"
    ip -n "$1" link set "$2" up
}
mac() { ip -n "$1" link show "$2" | awk '/link\/ether/ { print $2 }'; }
# The client's ARP entry for an address (its MAC), or nothing.
neigh() { ip -n "$1" neigh show "$2" | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }
has_addr() { ip -n "$1" -o addr show | grep -q " $2/"; }
# A director's kernel: forwards (NAT), IPVS without conntrack.
director_ns() {
    ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$1" sysctl -qw net.ipv4.vs.conntrack=0 2>/dev/null || true
}

# ---- nginx -----------------------------------------------------------------
# www NAME BODY: a document root /tmp/www-NAME with index.html = BODY and the
# health page /health/index.html = "ok" (the digest in the fixtures).
www() {
    mkdir -p "/tmp/www-$1/health"
    echo "$2" >"/tmp/www-$1/index.html"
    echo ok >"/tmp/www-$1/health/index.html"
}
# ngx_conf NAME LISTEN ROOT [EXTRA]: writes /tmp/ngx-NAME/nginx.conf, an
# nginx (master + 1 worker) serving ROOT on LISTEN, with /status answering
# 200; EXTRA goes into the server block.
ngx_conf() {
    local _d
    _d=/tmp/ngx-$1
    mkdir -p "$_d"
    cat >"$_d/nginx.conf" <<NGINX
user root root;
worker_processes 1;
pid $_d/nginx.pid;
error_log $_d/error.log;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $_d/body;
    proxy_temp_path $_d/proxy;
    fastcgi_temp_path $_d/fastcgi;
    uwsgi_temp_path $_d/uwsgi;
    scgi_temp_path $_d/scgi;
    default_type text/plain;
    keepalive_timeout 300;
    keepalive_requests 100000;
    server {
        listen $2;
        root $3;
        location = /status { return 200 "up\n"; }
        ${4:-}
    }
}
NGINX
}
# ngx NS NAME LISTEN ROOT [EXTRA]: ngx_conf, then starts it in NS; waits for
# its pid file (it listens by then).
ngx() {
    local _ns _d
    _ns=$1 _d=/tmp/ngx-$2
    shift
    ngx_conf "$@"
    rm -f "$_d/nginx.pid"
    ip netns exec "$_ns" nginx -e "$_d/error.log" -c "$_d/nginx.conf" ||
        { say "nginx $1 did not start"; cat "$_d/error.log" >&2; return 1; }
    wait_for 10 test -s "$_d/nginx.pid"
}
ngx_pid() { cat "/tmp/ngx-$1/nginx.pid" 2>/dev/null; }
ngx_running() {
    local _p
    _p=$(ngx_pid "$1") && [ -n "$_p" ] && kill -0 "$_p" 2>/dev/null
}
# ngx_stop NAME: fast shutdown (SIGTERM), waits until the master is gone.
ngx_stop() {
    local _p
    _p=$(ngx_pid "$1") || return 0
    kill -TERM "$_p" 2>/dev/null
    wait_for 10 not kill -0 "$_p"
    rm -f "/tmp/ngx-$1/nginx.pid"
}

# ---- directors -------------------------------------------------------------
# director NS CONF [ARGS]: starts `ipvsdir -f CONF -i NS -n -l` in NS with its
# own state files (/tmp/NS.vrrp.json, .health.json, .owned), log /tmp/NS.log.
director() {
    local _n _c
    _n=$1 _c=$2
    shift 2
    ip netns exec "$_n" ipvsdir -f "$_c" -i "$_n" -n -l \
        --vrrp-state "/tmp/$_n.vrrp.json" --health-state "/tmp/$_n.health.json" \
        --owned-state "/tmp/$_n.owned" --control-socket "/tmp/$_n.sock" \
        --drift-interval 2 --drain-grace 120 "$@" 2>>"/tmp/$_n.log" &
    echo $! >"/tmp/$_n.pid"
}
dpid() { cat "/tmp/$1.pid"; }
# pair CONF "INSTANCES": d1 starts and becomes MASTER of the INSTANCES, then
# d2 starts and becomes BACKUP. (Started together, both would wait out
# nearly the same Master_Down_Interval, 3.605 s at priority 101 and 3.613 s
# at 99, and both could become MASTER for a moment before the lower backs
# off, as RFC 3768 has it; a pair's master is normally up first.)
pair() {
    director d1 "$1"
    # shellcheck disable=SC2086 # a list of instances
    wait_for 30 all_state d1 MASTER $2 || die "d1 not MASTER of $2"
    director d2 "$1"
    # shellcheck disable=SC2086
    wait_for 30 all_state d2 BACKUP $2 || die "d2 not BACKUP of $2"
}
# vfield NS INSTANCE FIELD: a field of the instance in NS's report (pretty
# JSON, one field a line); vstate NS INSTANCE: its state.
vfield() {
    awk -v want="\"$2\"," -v field="\"$3\":" '
        $1 == "\"name\":" && $2 == want { f = 1 }
        f && $1 == field { gsub(/[",]/, "", $2); print $2; exit }
    ' "/tmp/$1.vrrp.json" 2>/dev/null
}
vstate() { vfield "$1" "$2" state; }
is_state() { [ "$(vstate "$1" "$2")" = "$3" ]; }
# all_state NS STATE INSTANCE...: every instance in STATE.
all_state() {
    local _n _s _i
    _n=$1 _s=$2
    shift 2
    for _i; do is_state "$_n" "$_i" "$_s" || return 1; done
}
# kill_director NS: the director dies as a machine does: every process in its
# namespace is SIGKILLed and its links go down (no more ARP replies, no
# forwarding with the table the dead daemon left behind).
kill_director() {
    local _l
    ip netns pids "$1" | xargs -r kill -9
    wait "$(dpid "$1")" 2>/dev/null
    # The dead daemon's last report says nothing any more.
    rm -f "/tmp/$1.vrrp.json"
    for _l in $(ip -n "$1" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2 }'); do
        ip -n "$1" link set "$_l" down
    done
}
# revive_links NS: its links come back up (the addresses and IPVS table
# the killed daemon left are still there, as after a daemon crash).
revive_links() {
    local _l
    for _l in $(ip -n "$1" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2 }'); do
        ip -n "$1" link set "$_l" up
    done
}
# stop_director NS: SIGTERM, waits for the exit; prints "NS exit STATUS".
stop_director() {
    local _p
    _p=$(dpid "$1")
    kill -TERM "$_p"
    wait "$_p"
    echo "$1 exit $?"
}
table() { ip netns exec "$1" ipvsadm -Ln; }
in_table() { ip netns exec "$1" ipvsadm -Ln | grep -q -- "$2"; }
# dests NS: "ADDR:PORT FORWARD WEIGHT" per real server of the table.
dests() { ip netns exec "$1" ipvsadm -Ln | awk '$1 == "->" && $2 != "RemoteAddress:Port" { print $2, $3, $4 }'; }

# ---- the LVS-NAT lab (scenarios 1 and 3) -------------------------------------
#   client 192.168.10.2 --brx-- d1 .11 / d2 .12, VIP 192.168.10.100 (VI_EXT)
#   d1 10.0.0.2 / d2 10.0.0.3, gateway VIP 10.0.0.1 (VI_INT) --bri--
#       rs1..rs3 10.0.0.11-13 (nginx), sorry 10.0.0.250 (nginx)
# The real servers' default route is the gateway VIP, which moves with the
# client-side VIP (sync group VG_NAT in nat-vrrp.conf).
# shellcheck disable=SC2034
VIP=192.168.10.100
nat_lab() {
    local i
    mkns client d1 d2 rs1 rs2 rs3 sorry
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
        www rs$i rs$i
        ngx rs$i rs$i 80 /tmp/www-rs$i
    done
    plug sorry eth0 bri 10.0.0.250/24
    ip -n sorry route add default via 10.0.0.1
    www sorry sorry
    ngx sorry sorry 80 /tmp/www-sorry
    say "lab up"
}

# ---- client ----------------------------------------------------------------
# Requests from the client namespace (e2e-client.sh): burst prints one answer
# per line; stream logs "START END ANSWER" per request to a file in the
# background until /tmp/stream.stop exists (or its own limits).
burst() { ip netns exec client sh /work/e2e-client.sh burst "$@"; }
stream_start() { # LOG MAX_SECS HOST...
    rm -f /tmp/stream.stop "$1"
    ip netns exec client sh /work/e2e-client.sh stream "$@" &
    _stream_pid=$!
}
stream_stop() {
    touch /tmp/stream.stop
    wait "$_stream_pid"
}
# summary LOG [FROM [TO]]: requests started in [FROM, TO): counts and answers.
summary() {
    awk -v a="${2:-0}" -v b="${3:-1e9}" '
        $1 + 0 >= a + 0 && $1 + 0 < b + 0 {
            n++
            if ($3 ~ /FAIL$/) f++; else { ok++; c[$3]++ }
        }
        END {
            printf "sent %d ok %d failed %d", n, ok, f
            for (k in c) printf " %s=%d", k, c[k]
            printf "\n"
        }' "$1"
}
# outage LOG T: the client's outage after T: from T to the end of the first
# successful request started after the last failure (or after T).
outage() {
    awk -v t="$2" '
        $1 + 0 >= t + 0 { n++; e[n] = $2; r[n] = $3; if ($3 ~ /FAIL$/) last = n }
        END {
            for (i = last + 1; i <= n; i++) if (r[i] !~ /FAIL$/) { printf "%.2f\n", e[i] - t; exit }
            print "none"
        }' "$1"
}

plus() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }
# Who answers ARP for an address, as the client sees it: d1, d2 or the MAC.
arp_owner() {
    local _m
    _m=$(neigh client "$1")
    if [ "$_m" = "$(mac d1 eth0)" ]; then echo d1
    elif [ "$_m" = "$(mac d2 eth0)" ]; then echo d2
    else echo "${_m:-none}"
    fi
}
arp_is() { [ "$(arp_owner "$1")" = "$2" ]; }

# failover NAME "INSTANCES" HOST...: the client streams to the HOSTs while
# the master d1 is killed (kill_director); waits until d2 is MASTER of the
# INSTANCES and the client's ARP entry for the first HOST points at d2.
# Section NAME: takeover (kill -> d2 MASTER), outage (kill -> the client's
# first answer after its last failure), the client's counts overall and for
# requests started more than 1 s after the takeover.
failover() {
    local _name _inst _tk _tm _ta _i _h
    _name=$1 _inst=$2
    shift 2
    stream_start "/tmp/$_name.log" 120 "$@"
    sleep 2
    say "$_name: killing d1"
    _tk=$(now)
    kill_director d1
    # shellcheck disable=SC2086 # a list of instances
    wait_for 40 all_state d2 MASTER $_inst
    _tm=$(now)
    wait_for 20 arp_is "$1" d2
    _ta=$(now)
    sleep 4
    stream_stop
    sec "$_name"
    echo "takeover: $(elapsed "$_tk" "$_tm")"
    echo "client arp moved: $(elapsed "$_tk" "$_ta")"
    echo "outage: $(outage "/tmp/$_name.log" "$_tk")"
    echo "client: $(summary "/tmp/$_name.log")"
    echo "after kill: $(summary "/tmp/$_name.log" "$_tk")"
    echo "after takeover: $(summary "/tmp/$_name.log" "$(plus "$_tm" 1)")"
    for _i in $_inst; do echo "d2 $_i: $(vstate d2 "$_i")"; done
    for _h; do echo "arp $_h: $(arp_owner "$_h")"; done
    sec "$_name log"
    cat "/tmp/$_name.log"
}
# preempt_begin NAME HOST...: the client streams while d1 comes back (the
# caller brings up its links and starts it); preempt_end NAME "INSTANCES"
# waits until d1 is MASTER of them again and d2 BACKUP. Section NAME.
preempt_begin() {
    _name=$1
    shift
    _hosts=$*
    stream_start "/tmp/$_name.log" 120 "$@"
    sleep 2
    say "$_name: d1 comes back"
    _tr=$(now)
}
preempt_end() {
    local _name _inst _tp _i _h
    _name=$1 _inst=$2
    # shellcheck disable=SC2086
    wait_for 40 all_state d1 MASTER $_inst
    _tp=$(now)
    # shellcheck disable=SC2086
    wait_for 20 all_state d2 BACKUP $_inst
    # shellcheck disable=SC2086 # a list of hosts
    set -- $_hosts
    wait_for 20 arp_is "$1" d1
    sleep 3
    stream_stop
    sec "$_name"
    echo "master again: $(elapsed "$_tr" "$_tp")"
    echo "client: $(summary "/tmp/$_name.log")"
    echo "after preempt: $(summary "/tmp/$_name.log" "$(plus "$_tp" 1)")"
    for _i in $_inst; do echo "d1 $_i: $(vstate d1 "$_i")"; echo "d2 $_i: $(vstate d2 "$_i")"; done
    for _h; do echo "arp $_h: $(arp_owner "$_h")"; done
    sec "$_name log"
    cat "/tmp/$_name.log"
}

# Collected at the end: each director's log and table.
logs() {
    local _n
    for _n; do
        sec "log $_n"
        cat "/tmp/$_n.log" 2>/dev/null
    done
}

# shellcheck source=/dev/null
case ${1:-} in
nat | dr | reload | seeds | handoff | scaleout) . "./e2e-$1.sh" ;;
*)
    echo "usage: sh e2e.sh nat|dr|reload|seeds|handoff [PART...]|scaleout" >&2
    exit 2
    ;;
esac

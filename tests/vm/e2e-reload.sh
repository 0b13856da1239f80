# shellcheck shell=dash disable=SC2086 # fixed addresses and paths, no spaces
# Sourced by e2e.sh: scenario 3, reload under load. The LVS-NAT lab with
# tests/fixtures/e2e/reload.conf on both directors; its virtual server
# (reload-vs.conf) is replaced three times and both daemons get SIGHUP:
#   1: rs1's weight 1 -> 3, 2: rs3 added, 3: rs2 removed (drained: weight 0
#   for --drain-grace, so its held connections carry on; deleted after)
# while the client streams requests and holds three keep-alive connections.

nat_lab
mkdir -p /tmp/r
cp $E/nat-vrrp.conf $E/reload.conf /tmp/r/
cp $E/reload-vs-0.conf /tmp/r/reload-vs.conf

pair /tmp/r/reload.conf "VI_EXT VI_INT"
for d in d1 d2; do
    for rs in 10.0.0.11 10.0.0.12; do wait_for 20 in_table $d $rs:80; done
done
say "directors up"

# The real servers of a table as one line: "ADDR FORWARD WEIGHT, ..."
dest_line() { dests "$1" | sort | awk 'NR > 1 { printf ", " } { printf "%s", $0 } END { print "" }'; }
dest_is() { [ "$(dest_line "$1")" = "$2" ]; }
service_line() { ip netns exec "$1" ipvsadm -Ln | awk '$1 == "TCP"'; }
# The established connections through d1: "SOURCE -> DESTINATION" lines
# (the three held connections; a stream request rarely).
established() { ip netns exec d1 ipvsadm -Lnc | awk '$3 == "ESTABLISHED" { print $4, "->", $6 }' | sort; }
service_conns() { ip netns exec "$1" ipvsadm -Ln --stats | awk '$1 == "TCP" { print $3 }'; }

sec "reload 0"
echo "d1 dests: $(dest_line d1)"
echo "d2 dests: $(dest_line d2)"
echo "d1 service: $(service_line d1)"
sec "reload 0 table d1"
table d1

# Three long-lived connections, then the request stream.
rm -f /tmp/hold.stop
for h in 1 2 3; do
    ip netns exec client sh /work/e2e-client.sh hold $VIP 150 1 /tmp/hold$h &
    eval "hold_pid$h=\$!"
done
sleep 2
sec "held before"
established
stream_start /tmp/reload.log 150 $VIP
sleep 3

step=1
for want in \
    "10.0.0.11:80 Masq 3, 10.0.0.12:80 Masq 1" \
    "10.0.0.11:80 Masq 3, 10.0.0.12:80 Masq 1, 10.0.0.13:80 Masq 1" \
    "10.0.0.11:80 Masq 3, 10.0.0.12:80 Masq 0, 10.0.0.13:80 Masq 1"; do
    cp $E/reload-vs-$step.conf /tmp/r/reload-vs.conf
    say "reload $step"
    t0=$(now)
    kill -HUP "$(dpid d1)" "$(dpid d2)"
    if wait_for 15 dest_is d1 "$want"; then
        applied=$(elapsed "$t0" "$(now)")
    else
        applied=never
    fi
    wait_for 10 dest_is d2 "$want"
    sleep 3
    sec "reload $step"
    echo "wanted: $want"
    echo "applied after: $applied"
    echo "d1 dests: $(dest_line d1)"
    echo "d2 dests: $(dest_line d2)"
    echo "d1 service: $(service_line d1)"
    echo "d1 service conns: $(service_conns d1)"
    echo "client so far: $(summary /tmp/reload.log)"
    sec "reload $step table d1"
    table d1
    step=$((step + 1))
done

sec "held after"
established
stream_stop
touch /tmp/hold.stop
for h in 1 2 3; do eval "wait \$hold_pid$h"; done
sec "reload client"
echo "client: $(summary /tmp/reload.log)"
sec "holds"
# Per connection: requests sent, responses (status lines), the answers.
for h in 1 2 3; do
    echo "hold$h: sent $(cat /tmp/hold$h.sent) responses $(grep -c '^HTTP/1.1 200' /tmp/hold$h) answers $(grep -E '^rs[0-9]' /tmp/hold$h | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')"
done
sec "reload log"
cat /tmp/reload.log
sec "stop"
stop_director d1
stop_director d2
logs d1 d2

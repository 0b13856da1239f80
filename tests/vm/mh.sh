#!/bin/sh
# Runs inside the kernel VM, at the end of ipvs-scenarios.sh (one boot; see
# tests/vm_ipvs.rs): two directors in two network namespaces with the same
# mh service and different histories map the same flows to the same real
# servers. Director A starts with every real server up, sees some fail and
# come back, a reload that inserts one in the middle of the list and a hand
# re-add that moves one in the kernel's list; director B starts once, with
# the final file and the final health. A third namespace built by hand
# (ipvsadm, another order, the failed server added at weight 0) shows the
# mapping is not the same by chance. IPVS is per network namespace.
set -u
sec() { echo "=== $1"; }
D=/tmp/mh
mkdir -p $D/A $D/B
conf() { # $1: director, $2: real servers (last octets, file order)
    {
        printf 'global_defs {\n    router_id %s\n    lvs_sysctl sloppy_tcp 1 conn_reuse_mode 0 expire_nodest_conn 1 schedule_icmp 1\n' "$1"
        printf '    announce_table 100\n}\n'
        printf 'virtual_server 10.99.0.1 80 {\n    delay_loop 1\n    lvs_sched mh\n    mh-port\n    mh-fallback\n'
        printf '    lvs_method DR\n    protocol TCP\n    announce\n'
        for i in $2; do
            w=1; [ "$i" = 3 ] && w=3; [ "$i" = 5 ] && w=2
            printf '    real_server 10.7.0.%s 80 {\n        weight %s\n' "$i" "$w"
            printf '        MISC_CHECK {\n            misc_path "/bin/busybox test -e %s/%s/up.%s"\n        }\n    }\n' "$D" "$1" "$i"
        done
        printf '}\n'
    }
}
up() { touch $D/$1/up.$2; }
down() { rm -f $D/$1/up.$2; }
# Waits until director $1's table shows real server $2 with weight $3.
wait_w() {
    i=0
    while [ $i -lt 100 ]; do
        ip netns exec d$1 ipvsadm -Ln | grep -q "10.7.0.$2:80 .*Route *$3 " && return 0
        i=$((i + 1)); sleep 0.2
    done
    echo "timeout: d$1 10.7.0.$2 weight $3"; ip netns exec d$1 ipvsadm -Ln
}
# The kernel's list in its own order (ipvsadm -Ln sorts it): hex ADDR:PORT:WEIGHT.
order() { ip netns exec d$1 cat /proc/net/ip_vs | awk '/->.*Route/ {printf "%s:%s ", $2, $4} END {print ""}'; }

ip netns add cl
ip -n cl link set lo up
for a in 1 2 3 4; do ip -n cl addr add 10.8.0.$a/32 dev lo; done
n=0
for d in A B C; do
    n=$((n + 1))
    ip netns add d$d
    ip -n d$d link set lo up
    ip -n d$d addr add 10.99.0.1/32 dev lo
    ip -n d$d link add rs0 type dummy
    ip -n d$d addr add 10.7.0.254/24 dev rs0
    ip -n d$d link set rs0 up
    ip link add c$d netns cl type veth peer name d$d-c netns d$d
    ip -n cl addr add 10.9.$n.2/24 dev c$d
    ip -n cl link set c$d up
    ip -n d$d addr add 10.9.$n.1/24 dev d$d-c
    ip -n d$d link set d$d-c up
    ip -n d$d route add 10.8.0.0/24 via 10.9.$n.2
done
run() { # $1: director; the rest: ipvsdir arguments
    d=$1; shift
    ip netns exec d$d ipvsdir -C -n -l -p $D/$d.pid --control-socket $D/$d.sock \
        --owned-state $D/$d.owned --drift-interval 1 "$@" >>$D/$d.log 2>&1 &
}

# Director A: everything up, then a history.
for i in 1 2 3 4 5; do up A $i; done
conf A "1 2 3 4 5" > $D/A.conf
run A -f $D/A.conf
for i in 1 2 3 4 5; do wait_w A $i "[1-3]"; done
sec "A start order"; order A
down A 2; wait_w A 2 0
down A 4; wait_w A 4 0
down A 1; wait_w A 1 0
up A 2; wait_w A 2 1
up A 1; wait_w A 1 1
sec "A after failures order"; order A
# A reload inserts 10.7.0.6 between .2 and .3.
up A 6
conf A "1 2 6 3 4 5" > $D/A.conf
kill -HUP "$(cat $D/A.pid)"
wait_w A 6 1
sec "A after reload order"; order A
# By hand: .3 deleted and re-added, so it moves to the front of the kernel's list.
ip netns exec dA ipvsadm -d -t 10.99.0.1:80 -r 10.7.0.3:80
ip netns exec dA ipvsadm -a -t 10.99.0.1:80 -r 10.7.0.3:80 -g -w 3
sec "A hand-moved order"; order A
i=0
while [ $i -lt 50 ] && [ "$(order A | cut -d' ' -f1)" = "0A070003:0050:3" ]; do i=$((i + 1)); sleep 0.2; done
sleep 1
sec "A repaired order"; order A

# Director B: one clean start with the final file and health (.4 down).
for i in 1 2 3 5 6; do up B $i; done
conf B "1 2 6 3 4 5" > $D/B.conf
run B -f $D/B.conf
wait_w B 4 0
for i in 1 2 3 5 6; do wait_w B $i "[1-3]"; done
sec "B order"; order B

# Control: the same service built by hand in another order, .4 added at weight 0.
ip netns exec dC ipvsadm -A -t 10.99.0.1:80 -s mh -b mh-port,mh-fallback
for i in 1 2 3 5 6; do
    w=1; [ "$i" = 3 ] && w=3; [ "$i" = 5 ] && w=2
    ip netns exec dC ipvsadm -a -t 10.99.0.1:80 -r 10.7.0.$i:80 -g -w $w
done
ip netns exec dC ipvsadm -a -t 10.99.0.1:80 -r 10.7.0.4:80 -g -w 0
sec "C order"; order C

sec "A sysctls"
for s in sloppy_tcp sloppy_sctp conn_reuse_mode expire_nodest_conn schedule_icmp; do
    echo "$s $(ip netns exec dA cat /proc/sys/net/ipv4/vs/$s)"
done
sec "C sysctls"
for s in sloppy_tcp conn_reuse_mode expire_nodest_conn schedule_icmp; do
    echo "$s $(ip netns exec dC cat /proc/sys/net/ipv4/vs/$s)"
done

# The same 200 flows (4 source addresses x 50 source ports) to each director.
n=0
for d in A B C; do
    n=$((n + 1))
    ip -n cl route replace 10.99.0.1/32 via 10.9.$n.1
    ip netns exec cl /usr/local/bin/vm_ipvs_inner --ignored --exact inner_send_flows >/dev/null 2>&1
    sec "$d conns"
    ip netns exec d$d ipvsadm -Lnc | awk '$1 == "TCP" {print $4, $6}' | sort
done
for d in A B; do
    kill "$(cat $D/$d.pid)" 2>/dev/null
done
sleep 1
sec "A log"; grep -E "IPVS|lvs_sysctl|Disabling|drift" $D/A.log | tail -n 40
sec "B log"; grep -E "IPVS|lvs_sysctl|Disabling" $D/B.log | tail -n 20

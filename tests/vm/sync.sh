#!/bin/sh
# Runs inside the kernel VM (see tests/vm_sync.rs): two VRRP directors in
# namespaces on a bridge, each with `lvs_sync_daemon eth0 VI_1`; the kernel's
# sync daemons (ipvsadm -L --daemon) follow the VRRP roles.
set -u
sec() { echo "=== $1"; }
ip link add br0 type bridge
ip link set br0 up
for i in 1 2; do
    ip netns add d$i
    ip link add v$i type veth peer name eth0 netns d$i
    ip link set v$i master br0 up
    ip -n d$i link set lo up
    ip -n d$i addr add 10.99.0.1$i/24 dev eth0
    ip -n d$i link set eth0 up
    cat > d$i.conf <<CONF
global_defs {
    lvs_sync_daemon eth0 VI_1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority $((200 - 50 * i))
    advert_int 1
    virtual_ipaddress {
        10.99.0.200/24
    }
}
CONF
done
daemons() { for i in 1 2; do echo "d$i: $(ip netns exec d$i ipvsadm -L --daemon | tr '\n' ' ')"; done; }
ip netns exec d1 ipvsdir -P -n -l -f d1.conf --vrrp-state /tmp/d1.json --control-socket /tmp/d1.sock 2>d1.log &
p1=$!
ip netns exec d2 ipvsdir -P -n -l -f d2.conf --vrrp-state /tmp/d2.json --control-socket /tmp/d2.sock 2>d2.log &
p2=$!
# role NODE ROLE: NODE's kernel runs the ROLE ("master"/"backup") sync daemon.
role() { ip netns exec "$1" ipvsadm -L --daemon | grep -q "$2 sync daemon"; }
# Wait (bounded) for d1 to be master. Both may pass through MASTER at start
# (whichever times out first), and a sync daemon switch takes a moment: wait
# (bounded, 20 s) for the roles to settle rather than for the first line.
n=0
while ! grep -q "Entering MASTER" d1.log && [ $n -lt 100 ]; do sleep 0.2; n=$((n + 1)); done
n=0
while ! { role d1 master && role d2 backup; } && [ $n -lt 100 ]; do sleep 0.2; n=$((n + 1)); done
sec "elected"
daemons
before=$(grep -c "Entering MASTER" d2.log)
kill -9 $p1
n=0
while [ "$(grep -c "Entering MASTER" d2.log)" -le "$before" ] && [ $n -lt 100 ]; do sleep 0.2; n=$((n + 1)); done
n=0
while ! role d2 master && [ $n -lt 100 ]; do sleep 0.2; n=$((n + 1)); done
sec "after failover"
daemons
kill -TERM $p2
wait $p2
sec "after stop"
daemons
sec "logs"
cat d1.log d2.log

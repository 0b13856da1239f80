#!/bin/sh
# Runs inside the kernel VM (see tests/vm_datapath.rs): a client, this
# director and two real servers (busybox httpd) in network namespaces; IPVS
# NAT configured by ipvsdir. Sections "=== NAME" are read back by the test.
set -eu
sec() { echo "=== $1"; }

sysctl -qw net.ipv4.ip_forward=1
# IPVS NAT needs conntrack off for the director to answer from the VIP itself.
sysctl -qw net.ipv4.vs.conntrack=0 2>/dev/null || true

# client <-> director: 192.168.10.0/24, VIP 192.168.10.100 on the director.
ip netns add client
ip link add d-cl type veth peer name cl-d
ip link set cl-d netns client
ip addr add 192.168.10.1/24 dev d-cl
ip addr add 192.168.10.100/24 dev d-cl
ip link set d-cl up
ip -n client addr add 192.168.10.2/24 dev cl-d
ip -n client link set cl-d up
ip -n client link set lo up

# director <-> real servers: 10.0.0.0/24 on a bridge, the director is their gateway.
ip link add br0 type bridge
ip addr add 10.0.0.1/24 dev br0
ip link set br0 up
for i in 1 2; do
    ns=rs$i
    ip netns add $ns
    ip link add d-$ns type veth peer name $ns-d
    ip link set d-$ns master br0 up
    ip link set $ns-d netns $ns
    ip -n $ns addr add 10.0.0.1$i/24 dev $ns-d
    ip -n $ns link set $ns-d up
    ip -n $ns link set lo up
    ip -n $ns route add default via 10.0.0.1
    mkdir -p /tmp/www$i
    echo "rs$i" > /tmp/www$i/index.html
    ip netns exec $ns busybox httpd -p 80 -h /tmp/www$i
done

sec "apply"
ipvsdir -f nat.conf --apply-once 2>&1
sec "table"
ipvsdir --dump

get() { ip netns exec client timeout 5 busybox wget -q -O - http://192.168.10.100/ 2>&1 || echo FAIL; }
sec "requests"
for n in 1 2 3 4 5 6; do get; done

# Counters lag up to 2 s.
sleep 3
sec "stats before"
ipvsdir --dump --stats
sec "weight change"
sed 's/weight 1/weight 2/' nat.conf > nat2.conf
ipvsdir -f nat2.conf --apply-once 2>&1
sec "stats after"
ipvsdir --dump --stats
sec "requests after"
for n in 1 2 3; do get; done

# LVS-DR: client, director and two real servers on one segment; the real
# servers hold the VIP on lo and must not answer ARP for it.
ip link add br1 type bridge
ip link set br1 up
ip addr add 192.168.20.1/24 dev br1
ip addr add 192.168.20.100/32 dev br1
ip link add d-c2 type veth peer name c2-d
ip link set d-c2 master br1 up
ip link set c2-d netns client
ip -n client addr add 192.168.20.2/24 dev c2-d
ip -n client link set c2-d up
for i in 1 2; do
    ns=rs$i
    ip link add d2-$ns type veth peer name $ns-d2
    ip link set d2-$ns master br1 up
    ip link set $ns-d2 netns $ns
    ip netns exec $ns sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    ip -n $ns addr add 192.168.20.1$i/24 dev $ns-d2
    ip -n $ns link set $ns-d2 up
    ip -n $ns addr add 192.168.20.100/32 dev lo
done
sec "dr apply"
ipvsdir -f dr.conf --apply-once --owned-state /tmp/dr.owned 2>&1
sec "dr table"
ipvsdir --dump
getdr() { ip netns exec client timeout 5 busybox wget -q -O - http://192.168.20.100/ 2>&1 || echo FAIL; }
sec "dr requests"
for n in 1 2 3 4; do getdr; done

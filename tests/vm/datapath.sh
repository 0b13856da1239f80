#!/bin/sh
# Runs inside the kernel VM (see tests/vm_datapath.rs): a client, this
# director and two real servers (busybox httpd) in network namespaces; IPVS
# NAT configured by ipvsdir. Sections "=== NAME" are read back by the test.
set -eu
. ./lab.sh
lab_nat 2
# IPVS NAT needs conntrack off for the director to answer from the VIP itself.
sysctl -qw net.ipv4.vs.conntrack=0 2>/dev/null || true
start 1; start 2

sec "apply"
ipvsdir -f nat.conf --apply-once 2>&1
sec "table"
ipvsdir --dump

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

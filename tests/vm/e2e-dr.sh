# shellcheck shell=dash disable=SC2086 # fixed addresses and paths, no spaces
# Sourced by e2e.sh: scenario 2, the LVS-DR director pair
# (tests/fixtures/e2e/dr.conf). One segment, bridge lan:
#   client .2, d1 .11, d2 .12, rs1 .21, rs2 .22 in 192.168.20.0/24,
#   VIP 192.168.20.100 (VI_DR) on the master director; the real servers hold
#   it on lo with arp_ignore=1/arp_announce=2 and answer the client directly.
VIP=192.168.20.100

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
    ip -n rs$i addr add $VIP/32 dev lo
    www rs$i rs$i
    ngx rs$i rs$i 80 /tmp/www-rs$i
done
say "lab up"

pair $E/dr.conf VI_DR
for d in d1 d2; do
    for rs in 192.168.20.21 192.168.20.22; do wait_for 20 in_table $d $rs:80; done
done
say "directors up"
sec "start"
for d in d1 d2; do
    echo "$d VI_DR: $(vstate $d VI_DR)"
    has_addr $d $VIP && echo "$d holds $VIP"
done
echo "arp $VIP: $(arp_owner $VIP)"
sec "start table d1"
table d1
sec "start table d2"
table d2

# rr: alternating. The answers come straight from the real servers.
sec "balance"
burst $VIP 8
sec "balance neigh"
# The client never learned a real server's MAC for the VIP.
echo "arp $VIP: $(arp_owner $VIP)"

stream_start /tmp/rsdown.log 60 $VIP
sleep 2
say "stopping rs1"
t0=$(now)
ngx_stop rs1
wait_for 20 not in_table d1 192.168.20.21:80
t1=$(now)
wait_for 20 not in_table d2 192.168.20.21:80
sleep 4
stream_stop
sec "rs1 down"
echo "removed after: $(elapsed "$t0" "$t1")"
echo "client: $(summary /tmp/rsdown.log)"
echo "after removal: $(summary /tmp/rsdown.log "$t1")"
sec "rs1 down table d1"
table d1
sec "rs1 down log"
cat /tmp/rsdown.log

say "starting rs1"
t0=$(now)
ngx rs1 rs1 80 /tmp/www-rs1
wait_for 20 in_table d1 192.168.20.21:80
t1=$(now)
wait_for 20 in_table d2 192.168.20.21:80
sec "rs1 back"
echo "added after: $(elapsed "$t0" "$t1")"
sec "rs1 back answers"
burst $VIP 8

failover failover VI_DR $VIP
sec "failover vips"
echo "d2 holds $VIP: $(has_addr d2 $VIP && echo yes || echo no)"
sec "failover table d2"
table d2
sec "failover stats d2"
ip netns exec d2 ipvsadm -Ln --stats
sec "failover answers"
burst $VIP 8

preempt_begin preempt $VIP
revive_links d1
director d1 $E/dr.conf
preempt_end preempt VI_DR
sec "preempt vips"
echo "d1 holds $VIP: $(has_addr d1 $VIP && echo yes || echo no)"
echo "d2 holds $VIP: $(has_addr d2 $VIP && echo yes || echo no)"
sec "preempt table d1"
table d1
sec "preempt answers"
burst $VIP 8

sec "stop"
stop_director d1
stop_director d2
sec "stop table d1"
table d1
sec "stop table d2"
table d2
logs d1 d2

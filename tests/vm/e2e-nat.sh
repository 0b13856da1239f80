# shellcheck shell=dash disable=SC2086 # fixed addresses and paths, no spaces
# Sourced by e2e.sh: scenario 1, the LVS-NAT director pair
# (tests/fixtures/e2e/nat.conf).
#
#   client 192.168.10.2 --brx-- d1 .11 / d2 .12, VIP 192.168.10.100 (VI_EXT)
#   d1 10.0.0.2 / d2 10.0.0.3, gateway VIP 10.0.0.1 (VI_INT) --bri--
#       rs1..rs3 10.0.0.11-13 (nginx, weights 3/2/1), sorry 10.0.0.250 (nginx)
# (nat_lab in e2e.sh.)

nat_lab

pair $E/nat.conf "VI_EXT VI_INT"
for d in d1 d2; do
    for rs in 10.0.0.11 10.0.0.12 10.0.0.13; do wait_for 20 in_table $d $rs:80; done
done
say "directors up"
sec "start"
for d in d1 d2; do
    for i in VI_EXT VI_INT; do echo "$d $i: $(vstate $d $i)"; done
    for a in $VIP 10.0.0.1; do has_addr $d $a && echo "$d holds $a"; done
done
sec "start table d1"
table d1
sec "start table d2"
table d2

# wrr 3/2/1: two full rounds of 6 new connections.
sec "balance"
burst $VIP 12

# A real server stops: out of both tables after its check fails; no request
# started after that fails.
stream_start /tmp/rsdown.log 60 $VIP
sleep 2
say "stopping rs2"
t0=$(now)
ngx_stop rs2
wait_for 20 not in_table d1 10.0.0.12:80
t1=$(now)
wait_for 20 not in_table d2 10.0.0.12:80
sleep 4
stream_stop
sec "rs2 down"
echo "removed after: $(elapsed "$t0" "$t1")"
echo "client: $(summary /tmp/rsdown.log)"
echo "after removal: $(summary /tmp/rsdown.log "$t1")"
sec "rs2 down table d1"
table d1
sec "rs2 down table d2"
table d2
sec "rs2 down log"
cat /tmp/rsdown.log

# It returns: back in.
say "starting rs2"
t0=$(now)
ngx rs2 rs2 80 /tmp/www-rs2
wait_for 20 in_table d1 10.0.0.12:80
t1=$(now)
wait_for 20 in_table d2 10.0.0.12:80
sec "rs2 back"
echo "added after: $(elapsed "$t0" "$t1")"
sec "rs2 back answers"
burst $VIP 12

# All stop: the sorry server answers.
say "stopping all real servers"
t0=$(now)
for i in 1 2 3; do ngx_stop rs$i; done
wait_for 20 in_table d1 10.0.0.250:80
wait_for 20 not in_table d1 "10.0.0.1[123]:80"
t1=$(now)
sec "all down"
echo "sorry after: $(elapsed "$t0" "$t1")"
sec "all down table d1"
table d1
sec "all down answers"
burst $VIP 4

# Back again, then the master director dies.
for i in 1 2 3; do ngx rs$i rs$i 80 /tmp/www-rs$i; done
for d in d1 d2; do
    for rs in 10.0.0.11 10.0.0.12 10.0.0.13; do wait_for 20 in_table $d $rs:80; done
    wait_for 20 not in_table $d 10.0.0.250:80
done
sec "all back table d1"
table d1

failover failover "VI_EXT VI_INT" $VIP
sec "failover vips"
echo "d2 holds $VIP: $(has_addr d2 $VIP && echo yes || echo no)"
echo "d2 holds 10.0.0.1: $(has_addr d2 10.0.0.1 && echo yes || echo no)"
sec "failover table d2"
table d2
sec "failover stats d2"
ip netns exec d2 ipvsadm -Ln --stats
sec "failover answers"
burst $VIP 12

# The master comes back (its links up; the VIPs and the IPVS table its
# killed daemon left are still there) and preempts.
preempt_begin preempt $VIP
revive_links d1
director d1 $E/nat.conf
preempt_end preempt "VI_EXT VI_INT"
sec "preempt vips"
echo "d1 holds $VIP: $(has_addr d1 $VIP && echo yes || echo no)"
echo "d2 holds $VIP: $(has_addr d2 $VIP && echo yes || echo no)"
echo "d2 holds 10.0.0.1: $(has_addr d2 10.0.0.1 && echo yes || echo no)"
sec "preempt table d1"
table d1
sec "preempt answers"
burst $VIP 12

# SIGTERM: both exit 0, VIPs and IPVS services removed.
sec "stop"
stop_director d1
stop_director d2
sec "stop table d1"
table d1
sec "stop table d2"
table d2
sec "stop addrs"
ip -n d1 -o addr show
ip -n d2 -o addr show
logs d1 d2

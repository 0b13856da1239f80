# shellcheck shell=dash disable=SC2086 # fixed addresses and paths, no spaces
# Sourced by e2e.sh: scenario 4, the seed topologies (VRRP only, no IPVS).
#  a) the tomcat pair (tests/fixtures/e2e/tomcat.conf): client, d1, d2 on
#     192.168.30.0/24, VIP .100. Each node runs "tomcat" (nginx on
#     127.0.0.1:8080); the notify scripts start the front service (nginx on
#     :80 proxying to the local tomcat) on the master and stop it elsewhere.
#  b) the nginx master/master pair (tests/fixtures/e2e/nginx-mm.conf):
#     client, d1, d2 on 192.168.40.0/24, VIPs .61 (d1) and .62 (d2), nginx
#     on :80 on both nodes.

# Removes the namespaces, the bridge and the state of one part.
teardown() {
    local n
    for n in client d1 d2; do
        ip netns pids $n | xargs -r kill -9
        ip netns del $n
    done
    ip link del "$1"
    rm -f /tmp/d1.* /tmp/d2.* /tmp/stream.stop
}
onoff() { "$@" && echo running || echo stopped; }

# ---- a) the tomcat pair -----------------------------------------------------
VIP=192.168.30.100
mkns client d1 d2
mkbr lan
plug client eth0 lan 192.168.30.2/24
plug d1 eth0 lan 192.168.30.11/24
plug d2 eth0 lan 192.168.30.12/24
for d in d1 d2; do
    www tomcat-$d "tomcat-$d"
    ngx $d tomcat-$d 127.0.0.1:8080 /tmp/www-tomcat-$d
    ngx_conf front-$d 80 /tmp/www-tomcat-$d "location / { proxy_pass http://127.0.0.1:8080; }"
done
say "tomcat lab up"
pair $E/tomcat.conf VI_TOMCAT
wait_for 10 ngx_running front-d1
sec "tomcat start"
for d in d1 d2; do
    echo "$d VI_TOMCAT: $(vstate $d VI_TOMCAT) priority $(vfield $d VI_TOMCAT effective_priority)"
    echo "$d front: $(onoff ngx_running front-$d)"
    echo "$d notify: $(tr '\n' ' ' </tmp/$d.notify 2>/dev/null)"
done
echo "arp $VIP: $(arp_owner $VIP)"
sec "tomcat start answers"
burst $VIP 4

# Tomcat dies on the master: 3 failed checks, 101 - 5 = 96 < 99.
stream_start /tmp/tomcat-down.log 90 $VIP
sleep 2
say "stopping tomcat on d1"
t0=$(now)
ngx_stop tomcat-d1
wait_for 40 is_state d2 VI_TOMCAT MASTER
t1=$(now)
wait_for 20 ngx_running front-d2
t2=$(now)
wait_for 20 is_state d1 VI_TOMCAT BACKUP
wait_for 20 not ngx_running front-d1
wait_for 20 arp_is $VIP d2
sleep 3
stream_stop
sec "tomcat down"
echo "handover: $(elapsed "$t0" "$t1")"
echo "front up: $(elapsed "$t0" "$t2")"
echo "client: $(summary /tmp/tomcat-down.log)"
echo "after handover: $(summary /tmp/tomcat-down.log "$t2")"
for d in d1 d2; do
    echo "$d VI_TOMCAT: $(vstate $d VI_TOMCAT) priority $(vfield $d VI_TOMCAT effective_priority)"
    echo "$d front: $(onoff ngx_running front-$d)"
    echo "$d notify: $(tr '\n' ' ' </tmp/$d.notify 2>/dev/null)"
done
echo "arp $VIP: $(arp_owner $VIP)"
sec "tomcat down log"
cat /tmp/tomcat-down.log

# Tomcat back: 2 good checks, 101 > 99: d1 preempts.
stream_start /tmp/tomcat-back.log 90 $VIP
sleep 2
say "starting tomcat on d1"
t0=$(now)
ngx d1 tomcat-d1 127.0.0.1:8080 /tmp/www-tomcat-d1
wait_for 40 is_state d1 VI_TOMCAT MASTER
t1=$(now)
wait_for 20 ngx_running front-d1
t2=$(now)
wait_for 20 is_state d2 VI_TOMCAT BACKUP
wait_for 20 not ngx_running front-d2
wait_for 20 arp_is $VIP d1
sleep 3
stream_stop
sec "tomcat back"
echo "master again: $(elapsed "$t0" "$t1")"
echo "front up: $(elapsed "$t0" "$t2")"
echo "client: $(summary /tmp/tomcat-back.log)"
echo "after preempt: $(summary /tmp/tomcat-back.log "$t2")"
for d in d1 d2; do
    echo "$d VI_TOMCAT: $(vstate $d VI_TOMCAT) priority $(vfield $d VI_TOMCAT effective_priority)"
    echo "$d front: $(onoff ngx_running front-$d)"
    echo "$d notify: $(tr '\n' ' ' </tmp/$d.notify 2>/dev/null)"
done
echo "arp $VIP: $(arp_owner $VIP)"
sec "tomcat back log"
cat /tmp/tomcat-back.log
sec "tomcat notify times"
for d in d1 d2; do sed "s/^/$d /" /tmp/$d.notify-times; done
sec "tomcat stop"
stop_director d1
stop_director d2
logs d1 d2
for d in d1 d2; do ngx_stop tomcat-$d; ngx_stop front-$d; done
teardown lan

# ---- b) the nginx master/master pair ----------------------------------------
VIP1=192.168.40.61
VIP2=192.168.40.62
mkns client d1 d2
mkbr lan2
plug client eth0 lan2 192.168.40.2/24
plug d1 eth0 lan2 192.168.40.31/24
plug d2 eth0 lan2 192.168.40.32/24
for d in d1 d2; do
    www nginx-$d "nginx-$d"
    ngx $d nginx-$d 80 /tmp/www-nginx-$d
done
say "master/master lab up"
# d1 first (MASTER of both while alone), then d2 takes VI_2 (150 > 100).
director d1 $E/nginx-mm.conf
wait_for 30 all_state d1 MASTER VI_1 VI_2 || die "d1 not MASTER"
director d2 $E/nginx-mm.conf
wait_for 30 all_state d2 MASTER VI_2 || die "d2 not MASTER of VI_2"
wait_for 30 all_state d2 BACKUP VI_1 || die "d2 not BACKUP of VI_1"
wait_for 30 all_state d1 BACKUP VI_2 || die "d1 not BACKUP of VI_2"
sec "mm start"
for d in d1 d2; do
    for i in VI_1 VI_2; do echo "$d $i: $(vstate $d $i)"; done
done
echo "arp $VIP1: $(arp_owner $VIP1)"
echo "arp $VIP2: $(arp_owner $VIP2)"
sec "mm start answers"
burst $VIP1 2
burst $VIP2 2

# d1 dies (its nginx with it): d2 holds both VIPs.
failover mm-failover VI_1 $VIP1 $VIP2
sec "mm-failover vips"
echo "d2 VI_2: $(vstate d2 VI_2)"
echo "d2 holds $VIP1: $(has_addr d2 $VIP1 && echo yes || echo no)"
echo "d2 holds $VIP2: $(has_addr d2 $VIP2 && echo yes || echo no)"
sec "mm failover answers"
burst $VIP1 2
burst $VIP2 2

# d1 comes back with its nginx: master of VI_1 again.
preempt_begin mm-preempt $VIP1 $VIP2
revive_links d1
ngx d1 nginx-d1 80 /tmp/www-nginx-d1
director d1 $E/nginx-mm.conf
preempt_end mm-preempt VI_1
sec "mm-preempt vips"
echo "d1 VI_2: $(vstate d1 VI_2)"
echo "d2 VI_2: $(vstate d2 VI_2)"
echo "d1 holds $VIP1: $(has_addr d1 $VIP1 && echo yes || echo no)"
echo "d2 holds $VIP1: $(has_addr d2 $VIP1 && echo yes || echo no)"
echo "d2 holds $VIP2: $(has_addr d2 $VIP2 && echo yes || echo no)"
sec "mm preempt answers"
burst $VIP1 2
burst $VIP2 2
sec "mm stop"
stop_director d1
stop_director d2
sec "mm tables"
table d1
table d2
logs d1 d2

#!/bin/sh
# Runs inside the kernel VM (see tests/vm_checks.rs): `ipvsdir -C` (the
# checkers driving IPVS) in front of real busybox httpd servers in network
# namespaces; servers are stopped and started and the kernel table (read
# with ipvsadm) and a client's answers are recorded per step.
set -u
. ./lab.sh
lab_nat 3
echo "sorry" > /tmp/www3/index.html
start 1; start 2; start 3

# The digest HTTP_GET compares, from genhash, next to md5sum of the page.
sec "genhash"
ipvsdir genhash -s 10.0.0.11 -p 80 -u /index.html
md5sum /tmp/www1/index.html
digest=$(ipvsdir genhash -s 10.0.0.11 -p 80 -u /index.html | tail -n 1 | awk '{print $NF}')

cat > check.conf <<CONF
virtual_server 192.168.10.100 80 {
    lb_algo rr
    lb_kind NAT
    delay_loop 0.3
    sorry_server 10.0.0.13 80
    real_server 10.0.0.11 80 {
        weight 1
        HTTP_GET {
            url {
                path /index.html
                digest $digest
            }
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }
    }
    real_server 10.0.0.12 80 {
        weight 1
        notify_down "/bin/sh -c 'echo rs2 down >> /tmp/notify.log'"
        notify_up "/bin/sh -c 'echo rs2 up >> /tmp/notify.log'"
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }
    }
}
CONF

# Waits (up to 10 s) until ipvsadm -Ln shows / stops showing a pattern.
wait_for() { i=0; until ipvsadm -Ln | grep -q -- "$1"; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
wait_gone() { i=0; while ipvsadm -Ln | grep -q -- "$1"; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
step() { sec "$1 table"; ipvsadm -Ln; sec "$1 answers"; for n in 1 2 3 4; do get; done; }

# The metrics (LVS counters read from the kernel at scrape time).
metrics() { timeout 5 busybox wget -q -O - http://127.0.0.1:9650/metrics 2>/dev/null; }
vip_conn='keepalived_lvs_vip_conn{addr="192.168.10.100:80",proto="6"}'

ipvsdir -f check.conf -C --drift-interval 2 --metrics-listen 127.0.0.1:9650 2>/tmp/ipvsdir.log &
pid=$!
wait_for "10.0.0.11:80" && wait_for "10.0.0.12:80"
step "all up"
# IPVS counters lag up to 2 s behind the traffic: wait for the 4 requests.
i=0; until metrics | grep -qxF "$vip_conn 4" || [ $i -gt 50 ]; do i=$((i+1)); sleep 0.2; done
sec "all up metrics"; metrics
# The report is rewritten within a second of new results: wait for both checkers'.
i=0; while ipvsdir --dump --health 2>/dev/null | grep -q "not checked yet" && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done
sec "all up health"; ipvsdir --dump --health
sec "all up json"; ipvsdir --dump --health --json

stop 1
wait_gone "10.0.0.11:80"
step "rs1 down"
# The report shows the verdict with the table change (the dump reads the
# kernel table live, the report as last written: allow for the write).
i=0; while ! ipvsdir --dump --health 2>/dev/null | grep -q "10.0.0.11:80.*out of the table: DOWN" && [ $i -lt 30 ]; do i=$((i+1)); sleep 0.1; done
sec "rs1 down health"; ipvsdir --dump --health
sec "rs1 down metrics"; metrics | grep -e '^keepalived_lvs_rs_conn' -e '^ipvsdir_real_server_weight'

stop 2
wait_for "10.0.0.13:80"
step "all down"

start 1
wait_for "10.0.0.11:80" && wait_gone "10.0.0.13:80"
step "rs1 back"

# Drain for maintenance, under a request stream: rs1 gets weight 0, a
# connection it holds finishes, no request fails; then it is taken out and
# put back, without a reload.
start 2
wait_for "10.0.0.12:80"
held() { (printf 'GET /index.html HTTP/1.0\r\n'; sleep 3; printf '\r\n') | ip netns exec client timeout 10 busybox nc 192.168.10.100 80 > /tmp/held$1 2>&1; }
held 1 & h1=$!
held 2 & h2=$!
sleep 0.5
sec "drain conns"; ipvsadm -Lnc
sec "drain ctl"; ipvsdir ctl drain 10.0.0.11:80
wait_for "10.0.0.11:80 *Masq *0 "
i=0; until ipvsdir --dump --health | grep -q DRAINING || [ $i -gt 20 ]; do i=$((i+1)); sleep 0.1; done
sec "drain table"; ipvsadm -Ln
sec "drain health"; ipvsdir --dump --health
sec "drain answers"; n=0; while [ $n -lt 20 ]; do get; n=$((n+1)); done
wait $h1 $h2
sec "drain held"; cat /tmp/held1 /tmp/held2 | grep '^rs' | sort
sec "disable ctl"; ipvsdir ctl disable 10.0.0.11:80
wait_gone "10.0.0.11:80"
i=0; until ipvsdir --dump --health | grep -q DISABLED || [ $i -gt 20 ]; do i=$((i+1)); sleep 0.1; done
sec "disabled health"; ipvsdir --dump --health
sec "disabled answers"; for n in 1 2 3 4; do get; done
sec "enable ctl"; ipvsdir ctl enable 10.0.0.11:80
wait_for "10.0.0.11:80 *Masq *1 "
sec "enabled table"; ipvsadm -Ln

kill -TERM $pid
wait $pid
sec "exit"; echo "status $?"
sec "after stop"; ipvsadm -Ln
sec "notify"; cat /tmp/notify.log
sec "log"; cat /tmp/ipvsdir.log

#!/bin/sh
# Runs inside the kernel VM (see tests/vm_keepalived_diff.rs): part B of
# the keepalived differential. keepalived 2.2.7 (`-C`) and ipvsdir (`-C`)
# run the same checkers at the same time, each in its own network
# namespace (its own IPVS table), against the same real servers on a
# bridge. One thing changes per step, and the next step waits until both
# tables changed; each tool's table (real servers and weights) is recorded
# whenever it changes, with the step it happened in.
set -u
sec() { echo "=== $1"; }

ip link add br0 type bridge
ip link set br0 up
i=0
for d in ka id; do
    i=$((i + 1))
    ip netns add $d
    ip -n $d link set lo up
    ip link add v-$d type veth peer name eth0 netns $d
    ip link set v-$d master br0 up
    ip -n $d addr add 10.0.0.$((1 + i))/24 dev eth0
    ip -n $d link set eth0 up
done
for n in 1 2 3 4 5 6 7 8 9 10; do
    ip netns add rs$n
    ip -n rs$n link set lo up
    ip link add v-rs$n type veth peer name eth0 netns rs$n
    ip link set v-rs$n master br0 up
    ip -n rs$n addr add 10.0.0.$((10 + n))/24 dev eth0
    ip -n rs$n link set eth0 up
done
mkdir -p /tmp/www1 /tmp/www2
echo "page one" > /tmp/www1/index.html
echo "page two" > /tmp/www2/index.html
http() { ip netns exec rs$1 busybox httpd -p 80 -h /tmp/www$1; }
unserve() { ip netns pids rs$1 | xargs -r kill; }
cat > /tmp/smtp.sh <<'SMTP'
#!/bin/sh
printf '220 rs7 ESMTP\r\n'
read -r l
printf '250 rs7\r\n'
read -r l
printf '221 bye\r\n'
SMTP
chmod 755 /tmp/smtp.sh
smtp() { ip netns exec rs7 busybox nc -ll -p 25 -e /tmp/smtp.sh & }
# dnsmasq (copied in by the test) answers www.example.test on rs8-rs10:
# UDP_CHECK without a reply wanted (rs8), DNS_CHECK (rs9) and UDP_CHECK
# with `require_reply` and a DNS query as payload (rs10). `dns N nx`
# answers NXDOMAIN instead.
dns() {
    a=10.0.0.99
    [ "${2:-}" = nx ] && a=''
    ip netns exec rs$1 dnsmasq -k -u root --conf-file=/dev/null --no-resolv \
        --no-hosts --pid-file= --bind-interfaces --listen-address=10.0.0.$((10 + $1)) \
        --address=/www.example.test/$a >/dev/null 2>&1 &
}
redns() { unserve $1; sleep 0.3; dns "$@"; }
http 1; http 2; smtp; dns 8; dns 9; dns 10
touch /tmp/misc3
echo 0 > /tmp/misc4
echo 1 > /tmp/file6
digest=$(md5sum /tmp/www1/index.html | cut -d' ' -f1)

cat > /tmp/check.conf <<CONF
track_file file6 {
    file /tmp/file6
}
virtual_server 192.168.10.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    delay_loop 1
    real_server 10.0.0.11 80 {
        weight 1
        HTTP_GET {
            url {
                path /index.html
                digest $digest
            }
            connect_timeout 3
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.12 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.13 80 {
        weight 3
        MISC_CHECK {
            misc_path "/bin/sh -c 'test -f /tmp/misc3'"
            misc_timeout 5
        }
    }
    real_server 10.0.0.14 80 {
        weight 4
        MISC_CHECK {
            misc_path "/bin/sh -c 'exit \$(cat /tmp/misc4)'"
            misc_timeout 5
            misc_dynamic
        }
    }
    real_server 10.0.0.15 80 {
        weight 5
        PING_CHECK {
            connect_timeout 3
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.16 80 {
        weight 6
        FILE_CHECK {
            track_file file6
        }
    }
    real_server 10.0.0.17 80 {
        weight 7
        SMTP_CHECK {
            connect_port 25
            connect_timeout 3
            helo_name director
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.18 80 {
        weight 8
        UDP_CHECK {
            connect_port 53
            connect_timeout 3
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.19 80 {
        weight 9
        DNS_CHECK {
            connect_port 53
            name www.example.test
            type A
            connect_timeout 3
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.20 80 {
        weight 10
        UDP_CHECK {
            connect_port 53
            payload 12340100000100000000000003777777076578616d706c650474657374000001000001
            require_reply
            connect_timeout 3
            retry 1
            delay_before_retry 1
        }
    }
}
CONF

echo 0 > /tmp/step
# Records tool $1's real servers and weights whenever they change, with
# the step and the time (ms since the start); /tmp/$1.now holds the
# current one. (sort -u: a dump that races a change can list an entry
# twice.)
record() {
    prev=''
    while [ ! -f /tmp/stop ]; do
        cur=$(ip netns exec $1 ipvsadm -S -n | grep '^-a' | awk '{print $5 "/" $NF}' | sort -u | tr '\n' ' ')
        if [ "$cur" != "$prev" ]; then
            echo "$(cat /tmp/step) $(($(ms) - t0)) $cur" >> /tmp/$1.changes
            echo "$cur" > /tmp/$1.next && mv /tmp/$1.next /tmp/$1.now
            prev=$cur
        fi
        sleep 0.2
    done
}
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }
t0=$(ms)
ip netns exec ka keepalived -C -n -l -f /tmp/check.conf -p /tmp/ka.pid -c /tmp/ka.cpid \
    >/tmp/ka.log 2>&1 &
ka=$!
ip netns exec id ipvsdir -C -n -f /tmp/check.conf -p /tmp/id.pid \
    --control-socket /tmp/id.sock >/tmp/id.log 2>&1 &
id=$!
record ka &
rka=$!
record id &
rid=$!

step() { # $1: step number, $2...: what to do
    n=$1
    shift
    before=$(cat /tmp/id.now)
    echo "$n" > /tmp/step
    echo "step $n $(($(ms) - t0)): $*"
    "$@"
    # Every step changes both tables: wait (up to 30 s) until both show the
    # same new table (a transient seen by one does not end the step), then
    # 2 s more for anything that follows.
    i=0
    while [ $i -lt 150 ]; do
        a=$(cat /tmp/ka.now) b=$(cat /tmp/id.now)
        [ "$a" = "$b" ] && [ "$a" != "$before" ] && break
        i=$((i + 1))
        sleep 0.2
    done
    sleep 2
}
# Both tables complete (the same, with every server up) before step 1, or
# 60 s; then 2 s more.
i=0
while [ $i -lt 300 ]; do
    a=$(cat /tmp/ka.now 2>/dev/null) b=$(cat /tmp/id.now 2>/dev/null)
    [ -n "$a" ] && [ "$a" = "$b" ] && [ "$(echo "$a" | wc -w)" -eq 10 ] && break
    i=$((i + 1))
    sleep 0.2
done
sleep 2
{
    step 1 unserve 1
    step 2 http 1
    step 3 sh -c 'echo changed > /tmp/www1/index.html'
    step 4 sh -c 'echo "page one" > /tmp/www1/index.html'
    step 5 unserve 2
    step 6 http 2
    step 7 rm /tmp/misc3
    step 8 touch /tmp/misc3
    step 9 sh -c 'echo 12 > /tmp/misc4'
    step 10 sh -c 'echo 1 > /tmp/misc4'
    step 11 sh -c 'echo 0 > /tmp/misc4'
    step 12 ip -n rs5 addr del 10.0.0.15/24 dev eth0
    step 13 ip -n rs5 addr add 10.0.0.15/24 dev eth0
    step 14 sh -c 'echo 0 > /tmp/file6'
    step 15 sh -c 'echo 1 > /tmp/file6'
    step 16 unserve 7
    step 17 smtp
    step 18 unserve 8
    step 19 dns 8
    step 20 unserve 9
    step 21 dns 9
    step 22 redns 9 nx
    step 23 redns 9
    step 24 sh -c 'ip netns pids rs10 | xargs -r kill -STOP'
    step 25 sh -c 'ip netns pids rs10 | xargs -r kill -CONT'
} > /tmp/steps.log 2>&1
# The recorders finish before the tools stop (their stop empties the tables).
touch /tmp/stop
wait $rka $rid
kill -TERM $ka $id
sleep 2
sec "checks steps"; cat /tmp/steps.log
sec "checks keepalived"; cat /tmp/ka.changes
sec "checks ipvsdir"; cat /tmp/id.changes
sec "checks keepalived log"; tail -n 60 /tmp/ka.log
sec "checks ipvsdir log"; tail -n 60 /tmp/id.log
sec "checks done"

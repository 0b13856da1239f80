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
for n in 1 2 3 4 5 6 7; do
    ip netns add rs$n
    ip -n rs$n link set lo up
    ip link add v-rs$n type veth peer name eth0 netns rs$n
    ip link set v-rs$n master br0 up
    ip -n rs$n addr add 10.0.0.1$n/24 dev eth0
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
http 1; http 2; smtp
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
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.12 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.0.13 80 {
        weight 3
        MISC_CHECK {
            misc_path "/bin/sh -c 'test -f /tmp/misc3'"
            misc_timeout 2
        }
    }
    real_server 10.0.0.14 80 {
        weight 4
        MISC_CHECK {
            misc_path "/bin/sh -c 'exit \$(cat /tmp/misc4)'"
            misc_timeout 2
            misc_dynamic
        }
    }
    real_server 10.0.0.15 80 {
        weight 5
        PING_CHECK {
            connect_timeout 1
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
            connect_timeout 2
            helo_name director
            retry 1
            delay_before_retry 1
        }
    }
}
CONF

echo 0 > /tmp/step
# Records tool $1's real servers and weights whenever they change, with
# the step and the time (ms since the start).
record() {
    prev=''
    while [ ! -f /tmp/stop ]; do
        cur=$(ip netns exec $1 ipvsadm -S -n | grep '^-a' | awk '{print $5 "/" $NF}' | sort | tr '\n' ' ')
        if [ "$cur" != "$prev" ]; then
            echo "$(cat /tmp/step) $(($(ms) - t0)) $cur" >> /tmp/$1.changes
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
record id &

step() { # $1: step number, $2...: what to do
    n=$1
    shift
    echo "$n" > /tmp/step
    echo "step $n $(($(ms) - t0)): $*"
    "$@"
    # Every step changes both tables: wait (up to 20 s) until both have,
    # then 2 s more for anything that follows.
    i=0
    while [ $i -lt 100 ]; do
        grep -q "^$n " /tmp/ka.changes && grep -q "^$n " /tmp/id.changes && break
        i=$((i + 1))
        sleep 0.2
    done
    sleep 2
}
sleep 8
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
} > /tmp/steps.log 2>&1
touch /tmp/stop
sleep 0.5
kill -TERM $ka $id
sleep 2
sec "checks steps"; cat /tmp/steps.log
sec "checks keepalived"; cat /tmp/ka.changes
sec "checks ipvsdir"; cat /tmp/id.changes
sec "checks keepalived log"; tail -n 60 /tmp/ka.log
sec "checks ipvsdir log"; tail -n 60 /tmp/id.log
sec "checks done"

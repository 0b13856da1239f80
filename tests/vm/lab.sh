# Sourced by the VM test scripts: the NAT lab. A client namespace on
# 192.168.10.0/24 with the VIP 192.168.10.100 on this director, and N real
# server namespaces rs1..rsN (10.0.0.11..) behind br0 with this director as
# their gateway, each with /tmp/wwwI/index.html saying "rsI".
sec() { echo "=== $1"; }

lab_nat() { # $1: number of real servers
    sysctl -qw net.ipv4.ip_forward=1
    ip netns add client
    ip link add d-cl type veth peer name cl-d
    ip link set cl-d netns client
    ip addr add 192.168.10.1/24 dev d-cl
    ip addr add 192.168.10.100/24 dev d-cl
    ip link set d-cl up
    ip -n client addr add 192.168.10.2/24 dev cl-d
    ip -n client link set cl-d up
    ip -n client link set lo up
    ip link add br0 type bridge
    ip addr add 10.0.0.1/24 dev br0
    ip link set br0 up
    i=1
    while [ "$i" -le "$1" ]; do
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
        i=$((i + 1))
    done
}

# Starts / stops real server I's web server.
start() { ip netns exec rs$1 busybox httpd -p 80 -h /tmp/www$1; }
stop() { ip netns pids rs$1 | xargs -r kill; }

# One request from the client to the VIP: the body, or FAIL.
get() { ip netns exec client timeout 5 busybox wget -q -O - http://192.168.10.100/ 2>&1 || echo FAIL; }

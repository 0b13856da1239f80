#!/bin/sh
# Runs inside the kernel VM (see tests/vm_ipvs.rs): every IPVS scenario in one
# boot. Each "=== NAME" line starts a section the Rust test reads back.
# ipvsadm is the independent oracle for what ipvsdir wrote.
set -u
sec() { echo "=== $1"; }
apply() {
    ipvsdir -f "$1" --apply-once >/tmp/apply.out 2>&1
    rc=$?
    grep -v ' INFO ' /tmp/apply.out
    return $rc
}

# 1. The shipped samples: ipvsadm -Ln and ipvsdir --dump agree.
for f in lvs-nat lvs-dr; do
    ipvsadm -C; rm -f /run/ipvsdir/owned-services
    sec "apply $f"; apply "$f.conf"
    sec "ipvsadm $f"; ipvsadm -Ln
    sec "dump $f"; ipvsdir --dump
    sec "plan-after $f"; ipvsdir -f "$f.conf" --plan 2>&1
done

# 2. Every scheduler, method and service kind, in every view.
ipvsadm -C; rm -f /run/ipvsdir/owned-services
sec "apply matrix"; apply matrix.conf
for v in plain stats rate save; do
    case $v in
        plain) a="-Ln"; d="" ;;
        stats) a="-Ln --stats"; d="--stats" ;;
        rate) a="-Ln --rate"; d="--rate" ;;
        save) a="-Sn"; d="--save" ;;
    esac
    sec "ipvsadm matrix $v"; ipvsadm $a
    sec "dump matrix $v"; ipvsdir --dump $d
done
sec "json matrix"; ipvsdir --dump --json
sec "timeouts"; ipvsadm -L --timeout
# Real kernel dumps through the decoder and back (this suite's own test binary).
sec "roundtrip"; vm_ipvs_inner --ignored --exact inner_netlink_roundtrip --nocapture 2>&1
sec "drift loop"; vm_ipvs_inner --ignored --exact inner_drift_repair --nocapture 2>&1

# 3. A scheduler this kernel lacks is a clear error, and the rest still applies.
ipvsadm -C; rm -f /run/ipvsdir/owned-services
sec "twos"; apply twos.conf; echo "rc=$?"

# 4. Minimal operations for one change each, against a live table.
ipvsadm -C; rm -f /run/ipvsdir/owned-services
apply lvs-nat.conf >/dev/null
awk '!done && /weight 3/ { sub(/weight 3/, "weight 4"); done = 1 } { print }' lvs-nat.conf > weight.conf
sec "one weight"; apply weight.conf
sec "one weight table"; ipvsadm -Ln
awk '/real_server 10.0.0.13 80/ { print "    real_server 10.0.0.14 80 {\n        weight 1\n    }" } { print }' weight.conf > added.conf
sec "one real server added"; apply added.conf
awk '/^virtual_server 203.0.113.10 443/ { skip = 1 } skip && /^}/ { skip = 0; next } !skip' added.conf > removed.conf
sec "one service removed"; apply removed.conf
sec "one service removed table"; ipvsadm -Ln
sec "nothing changed"; apply removed.conf

# 5. Foreign services survive; hand-made drift in ours is repaired.
ipvsadm -A -t 192.0.2.99:25 -s rr
ipvsadm -a -t 192.0.2.99:25 -r 10.9.9.9:25 -m
ipvsadm -d -t 203.0.113.10:80 -r 10.0.0.11:80
ipvsadm -e -t 203.0.113.10:80 -r 10.0.0.12:80 -m -w 9
sec "repair"; apply removed.conf
sec "repair table"; ipvsadm -Ln

# 6. Removing everything we own leaves the foreign service alone.
printf 'global_defs {\n    router_id x\n}\n' > empty.conf
sec "empty"; apply empty.conf
sec "empty table"; ipvsadm -Ln

# 7. mh: the same mapping on two directors with different histories (mh.sh).
sh mh.sh

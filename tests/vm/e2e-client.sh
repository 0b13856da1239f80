#!/bin/sh
# The client of tests/vm/e2e.sh, run in the client namespace. busybox wget
# (HTTP/1.0-style, one connection per request, "Connection: close"), each
# request bounded by `timeout 3` (wget -T crashes in this guest).
#
#   burst HOST N                    N requests, one answer (or FAIL) per line
#   stream LOG MAX_SECS HOST...     requests to the HOSTs in turn, ~10/s,
#                                   "START END ANSWER" lines (HOST:ANSWER with
#                                   several hosts, HOST:FAIL too) until /tmp/stream.stop
#                                   exists, MAX_SECS pass or 3000 were sent
#   hold HOST N GAP OUT             one keep-alive connection (busybox nc):
#                                   up to N requests GAP seconds apart (until
#                                   /tmp/hold.stop exists); responses to OUT,
#                                   the number of requests sent to OUT.sent
set -u

get() {
    r=$(timeout 3 wget -q -O - "http://$1/" 2>/dev/null) || r=FAIL
    echo "${r:-FAIL}"
}

case $1 in
burst)
    i=0
    while [ "$i" -lt "$3" ]; do
        get "$2"
        i=$((i + 1))
    done
    ;;
stream)
    log=$2 max=$3
    shift 3
    read -r t _ </proc/uptime
    end=$((${t%.*} + max))
    n=0
    while [ ! -e /tmp/stream.stop ] && [ "$n" -lt 3000 ]; do
        for h; do
            read -r t0 _ </proc/uptime
            [ "${t0%.*}" -lt "$end" ] || break 2
            a=$(get "$h")
            [ $# -gt 1 ] && a=$h:$a
            read -r t1 _ </proc/uptime
            echo "$t0 $t1 $a" >>"$log"
            n=$((n + 1))
        done
        sleep 0.1
    done
    ;;
hold)
    host=$2 n=$3 gap=$4 out=$5
    i=0
    while [ "$i" -lt "$n" ]; do
        i=$((i + 1))
        # The last request asks the server to close: nc exits then.
        c=keep-alive
        [ "$i" -lt "$n" ] && [ ! -e /tmp/hold.stop ] || c=close
        printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n' "$host" "$c"
        echo "$i" >"$out.sent"
        [ "$c" = close ] && break
        sleep "$gap"
    done | timeout $((n * gap + 30)) nc "$host" 80 >"$out"
    ;;
*)
    echo "usage: e2e-client.sh burst|stream|hold ..." >&2
    exit 2
    ;;
esac

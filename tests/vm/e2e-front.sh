#!/bin/sh
# notify script of the tomcat pair (tests/fixtures/e2e/tomcat.conf), run by
# ipvsdir in the director's namespace: start|stop NODE starts or stops NODE's
# front service (nginx on :80 in front of its tomcat; its configuration was
# written by e2e-seeds.sh) and logs the call to /tmp/NODE.notify (and with
# its uptime to /tmp/NODE.notify-times).
d=/tmp/ngx-front-$2
echo "$1" >>"/tmp/$2.notify"
read -r up _ </proc/uptime
echo "$up $1" >>"/tmp/$2.notify-times"
running() { p=$(cat "$d/nginx.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
case $1 in
start)
    running || nginx -e "$d/error.log" -c "$d/nginx.conf"
    read -r up _ </proc/uptime
    echo "$up started" >>"/tmp/$2.notify-times"
    ;;
stop)
    if running; then
        kill -TERM "$p"
        i=0
        while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
    fi
    rm -f "$d/nginx.pid"
    ;;
esac

#!/bin/sh
# vrrp_script checks of the seed topologies (tests/fixtures/e2e), run by
# ipvsdir in the director's namespace:
#   tomcat        the local tomcat (nginx on 127.0.0.1:8080) answers
#   nginx NODE    NODE's nginx is running (the sample's `pidof nginx` would
#                 see every node's nginx: the VM's namespaces share one
#                 process table)
case $1 in
tomcat) timeout 2 wget -q -O /dev/null http://127.0.0.1:8080/ ;;
nginx)
    p=$(cat "/tmp/ngx-nginx-$2/nginx.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null
    ;;
*) exit 2 ;;
esac

#!/bin/bash
# The part of packaging/test-install.sh that runs inside the booted Debian (as a oneshot unit).
# Writes its trace to /test/log and PASS or FAIL to /test/result, then powers the system off.
exec >/test/log 2>&1
set -x
fail() {
  echo "FAIL: $*"
  systemctl status mesos-dns-sidecar.socket mesos-dns-sidecar mesos-dns-sidecar-guard --no-pager || true
  journalctl -u mesos-dns-sidecar -u mesos-dns-sidecar-guard -u mesos-dns-sidecar.socket \
    -u mesos-dns-sidecar-linklocal.socket -u mesos-dns-sidecar-linklocal.service --no-pager | tail -n 60 || true
  journalctl -p warning --no-pager | tail -n 20 || true
  cat /etc/resolv.conf || true
  echo FAIL >/test/result
  systemctl poweroff --no-block
  exit 1
}
measured() { echo "MEASURED: $*"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# Waits up to $1 ms for a fresh name under example.test to resolve to $2; prints the ms taken.
until_forwarded_to() {
  local limit=$1 want=$2 start n=0
  start=$(ms)
  while true; do
    n=$((n + 1))
    if timeout 0.5 getent hosts "fresh$n-$RANDOM.example.test" | grep -q "$want"; then
      echo $(($(ms) - start))
      return 0
    fi
    [ $(($(ms) - start)) -lt "$limit" ] || return 1
    sleep 0.1
  done
}

cp -a /etc/resolv.conf /test/resolv.before
mkdir -p /etc/dhcp

# An operator's config placed before install, then a plain non-interactive install.
mkdir -p /etc/mesos-dns-sidecar /srv/cluster
install -m 0644 /test/demo.json /srv/cluster/demo.json
cat >/etc/mesos-dns-sidecar/config.json <<JSON
{"stateFile": "/srv/cluster/demo.json", "listener": "127.0.0.1", "port": 53,
 "HTTPListener": "127.0.0.1", "persistFile": "/var/lib/mesos-dns-sidecar/state.json", "ttl": 60}
JSON
cp /etc/mesos-dns-sidecar/config.json /test/config.placed
dpkg -i /test/pkg.deb </dev/null || fail "dpkg -i"
cmp /etc/mesos-dns-sidecar/config.json /test/config.placed || fail "the placed config was replaced"
for u in mesos-dns-sidecar.socket mesos-dns-sidecar.service mesos-dns-sidecar-guard.service; do
  systemctl is-active "$u" || fail "$u not active"
  systemctl is-enabled "$u" || fail "$u not enabled"
done
mesos-dns-sidecar resolvconf status
mesos-dns-sidecar resolvconf status | grep -q "mode: daemon" || fail "not in daemon mode"
grep -q '^nameserver 127.0.0.1' /etc/resolv.conf || fail "resolv.conf does not point at the daemon"
grep -q '^search corp.example' /etc/resolv.conf || fail "search line lost"
getent ahostsv4 web.marathon.mesos | grep -q 172.30. || fail "cluster name not resolved"
getent hosts www.example.test | grep -q 192.0.2.7 || fail "forwarded name not resolved"

# A glibc query loop (about 200 lookups a second of cluster and forwarded names) across 5
# restarts, 5 reloads, a reinstall and an upgrade.
rm -f /test/loop.stop
/test/resolve_loop /test/loop.out /test/loop.stop 5 web.marathon.mesos www.example.test leader.mesos api.example.test &
loop=$!
sleep 2
for i in 1 2 3 4 5; do
  systemctl restart mesos-dns-sidecar.service || fail "restart $i"
  sleep 1
done
for i in 1 2 3 4 5; do
  systemctl reload mesos-dns-sidecar.service || fail "reload $i"
  sleep 1
done
dpkg -i /test/pkg.deb </dev/null || fail "reinstall"
sleep 1
dpkg -i /test/upgrade.deb </dev/null || fail "upgrade"
sleep 2
touch /test/loop.stop
wait "$loop"
cat /test/loop.out
read -r _ asked _ failed _ slowest _ < /test/loop.out
measured "glibc loop across 5 restarts, 5 reloads, a reinstall and an upgrade: $asked lookups, $failed failed, slowest ${slowest} ms"
[ "$asked" -gt 1000 ] || fail "the loop made only $asked lookups"
[ "$failed" = 0 ] || fail "$failed lookups failed"
dpkg-query -W -f='${Version}\n' mesos-dns-sidecar | grep -q -- '-2$' || fail "not upgraded"
mesos-dns-sidecar resolvconf status | grep -q "mode: daemon" || fail "not in daemon mode after the upgrade"

# A DHCP renewal hands out another resolver: dhclient-script sources its enter hooks, then calls
# make_resolv_conf.
[ -L /etc/dhcp/dhclient-enter-hooks.d/mesos-dns-sidecar ] || fail "dhclient hook not linked"
(
  interface=eth0
  new_domain_name_servers=127.0.0.3
  new_domain_search=corp.example
  . /etc/dhcp/dhclient-enter-hooks.d/mesos-dns-sidecar
  make_resolv_conf
) || fail "dhclient hook"
grep -q '^nameserver 127.0.0.1' /etc/resolv.conf || fail "the hook rewrote resolv.conf away from the daemon"
took=$(until_forwarded_to 10000 192.0.2.8) || fail "the DHCP-provided resolver is not used within 10 s"
measured "dhclient renewal: new upstream used after $took ms"

# NetworkManager (rc-manager=unmanaged) learns resolvers and runs its dispatcher: here it hands
# back the original ones, byte for byte.
[ -f /usr/lib/NetworkManager/conf.d/90-mesos-dns-sidecar.conf ] || fail "NetworkManager drop-in missing"
mkdir -p /run/NetworkManager
cp /test/resolv.before /run/NetworkManager/resolv.conf
/usr/lib/NetworkManager/dispatcher.d/90-mesos-dns-sidecar eth0 dhcp4-change || fail "dispatcher hook"
took=$(until_forwarded_to 10000 192.0.2.7) || fail "the NetworkManager resolver is not used within 10 s"
measured "NetworkManager change: new upstream used after $took ms"

# Containers: the opt-in link-local address, on its own interface with NOTRACK rules.
systemctl enable mesos-dns-sidecar-linklocal.socket || fail "link-local socket"
systemctl restart mesos-dns-sidecar.service || fail "restart with the link-local socket"
systemctl is-active mesos-dns-sidecar-linklocal.socket || fail "link-local socket not active"
ip addr show dev mds-dns0 | grep -q 'inet 169.254.20.10/32' || fail "no link-local address"
nft list table inet mesos_dns_sidecar | grep -q notrack || fail "no NOTRACK rules"
touch /test/ctr-ask
for i in $(seq 1 100); do [ -e /test/ctr-done ] && break; sleep 0.2; done
cat /test/ctr-answer
grep -q '172\.30\.' /test/ctr-answer || fail "the container namespace did not resolve a cluster name"
grep -q '192\.0\.2\.' /test/ctr-answer || fail "the container namespace did not resolve a forwarded name"

# kill -9 with restarts off (and no way back until fixed): forwarded names resolve again within
# 2 s through the guard's fallback; cluster names come back when the daemon does.
mkdir -p /etc/systemd/system/mesos-dns-sidecar.service.d
printf '[Service]\nRestart=no\nExecStartPre=/bin/false\n' >/etc/systemd/system/mesos-dns-sidecar.service.d/broken.conf
systemctl daemon-reload
kill -9 "$(systemctl show -p MainPID --value mesos-dns-sidecar.service)"
took=$(until_forwarded_to 5000 192.0.2.7) || fail "no forwarded name resolves after kill -9"
measured "kill -9, restarts off: forwarded names resolve again after $took ms"
[ "$took" -le 2000 ] || fail "forwarded names took $took ms to come back"
mesos-dns-sidecar resolvconf status | grep -q "mode: fallback" || fail "not in fallback mode"
rm /etc/systemd/system/mesos-dns-sidecar.service.d/broken.conf
systemctl daemon-reload
systemctl reset-failed mesos-dns-sidecar.service mesos-dns-sidecar.socket || true
start=$(ms)
systemctl start mesos-dns-sidecar.socket mesos-dns-sidecar.service || fail "start after the fix"
for i in $(seq 1 50); do getent ahostsv4 web.marathon.mesos | grep -q 172.30. && break; sleep 0.1; done
getent ahostsv4 web.marathon.mesos | grep -q 172.30. || fail "cluster names did not come back"
measured "daemon back: cluster names resolve after $(($(ms) - start)) ms"
mesos-dns-sidecar resolvconf status | grep -q "mode: daemon" || fail "not back in daemon mode"

# Removal (not purge) takes everything away and gives resolv.conf back.
dpkg -r mesos-dns-sidecar </dev/null || fail "remove"
cmp /etc/resolv.conf /test/resolv.before || fail "resolv.conf not restored byte for byte"
[ -e /etc/dhcp/dhclient-enter-hooks.d/mesos-dns-sidecar ] && fail "dhclient hook left after remove"
[ -e /usr/lib/NetworkManager/conf.d/90-mesos-dns-sidecar.conf ] && fail "NetworkManager drop-in left"
[ -e /usr/lib/NetworkManager/dispatcher.d/90-mesos-dns-sidecar ] && fail "dispatcher hook left"
ip link show mds-dns0 2>/dev/null && fail "link-local interface left"
nft list table inet mesos_dns_sidecar 2>/dev/null && fail "NOTRACK rules left"
grep -qi ' 0100007F:0035 ' /proc/net/udp && fail "something still listens on 127.0.0.1:53"
grep -qi ' 0A14FEA9:0035 ' /proc/net/udp && fail "something still listens on 169.254.20.10:53"
for u in mesos-dns-sidecar.socket mesos-dns-sidecar.service mesos-dns-sidecar-guard.service mesos-dns-sidecar-linklocal.socket; do
  systemctl is-enabled "$u" 2>/dev/null && fail "$u still enabled"
done
dpkg --purge mesos-dns-sidecar </dev/null || fail "purge"
cmp /etc/resolv.conf /test/resolv.before || fail "resolv.conf changed by purge"
[ -e /etc/mesos-dns-sidecar ] && fail "/etc/mesos-dns-sidecar left after purge"
echo PASS >/test/result
systemctl poweroff --no-block

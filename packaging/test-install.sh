#!/usr/bin/env bash
# Install test, run as root by CI: builds both packages; checks the .rpm with rpm (file list,
# scripts, install into a scratch root); then boots a minimal Debian with systemd in
# systemd-nspawn, installs the .deb, and checks that the unit is active, resolv.conf points at
# the daemon, glibc resolves a cluster name and a forwarded name; then purges and checks the
# original resolv.conf is back byte for byte and nothing listens on port 53.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-install.sh needs root" >&2; exit 1; }
for tool in debootstrap systemd-nspawn rpm dnsmasq; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
packaging/build.sh >/dev/null
deb=$(ls target/packages/*.deb | head -n1)
rpm=$(ls target/packages/*.rpm | head -n1)

echo "== rpm: $rpm"
files=$(rpm -qpl "$rpm")
for f in /usr/bin/mesos-dns-sidecar /usr/lib/systemd/system/mesos-dns-sidecar.service /etc/mesos-dns-sidecar/config.json; do
  grep -qx "$f" <<<"$files" || { echo "rpm lacks $f" >&2; exit 1; }
done
scripts=$(rpm -qp --scripts "$rpm")
grep -q "resolvconf install" <<<"$scripts" && grep -q "resolvconf restore" <<<"$scripts" \
  || { echo "rpm scripts incomplete" >&2; exit 1; }
rpm -qp --qf '%{PAYLOADCOMPRESSOR}\n' "$rpm" | grep -qx gzip || { echo "rpm payload not gzip" >&2; exit 1; }
scratch=$(mktemp -d)
rpm --root "$scratch" --initdb
rpm --root "$scratch" -i --nodeps --noscripts "$rpm"
test -x "$scratch/usr/bin/mesos-dns-sidecar"
rpm --root "$scratch" -q mesos-dns-sidecar >/dev/null
rm -rf "$scratch"
echo "rpm: ok"

echo "== deb in a booted Debian container: $deb"
cache=/var/cache/mesos-dns-sidecar-test/bookworm
if [ ! -x "$cache/usr/bin/systemctl" ] || [ ! -x "$cache/usr/sbin/useradd" ]; then
  rm -rf "$cache"
  mkdir -p "$(dirname "$cache")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,passwd,iproute2 \
    bookworm "$cache" http://deb.debian.org/debian >/dev/null
fi
root=$(mktemp -d /var/tmp/mds-root.XXXXXX)
work=$(mktemp -d)
cleanup() { kill "${upstream_pid:-}" 2>/dev/null || true; rm -rf "$root" "$work"; }
trap cleanup EXIT
cp -a "$cache/." "$root/"
cp "$deb" "$work/pkg.deb"
cp src/mesos/demo_state.json "$work/demo.json"

# The upstream the container's original resolv.conf names (the container shares the host's
# network): answers example.test names.
dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
  --listen-address=127.0.0.2 --bind-interfaces --port=53 --address=/example.test/192.0.2.7 &
upstream_pid=$!

printf '# original resolv.conf of this host\nsearch corp.example\nnameserver 127.0.0.2\noptions ndots:1\n' \
  > "$root/etc/resolv.conf"
cat > "$work/inside.sh" <<'EOF'
#!/bin/bash
exec >/test/log 2>&1
set -x
fail() {
  echo "FAIL: $*"
  systemctl status mesos-dns-sidecar --no-pager || true
  journalctl -u mesos-dns-sidecar --no-pager | tail -n 30 || true
  echo FAIL >/test/result
  systemctl poweroff --no-block
  exit 1
}
cp -a /etc/resolv.conf /test/resolv.before
dpkg -i /test/pkg.deb || fail "dpkg -i"
systemctl is-active mesos-dns-sidecar || fail "unit not active"
cat /etc/resolv.conf
grep -q '^nameserver 127.0.0.1' /etc/resolv.conf || fail "resolv.conf does not point at the daemon"
grep -q '^search corp.example' /etc/resolv.conf || fail "search line lost"
cp /test/demo.json /var/lib/mesos-dns-sidecar/demo.json
cat >/etc/mesos-dns-sidecar/config.json <<JSON
{"stateFile": "/var/lib/mesos-dns-sidecar/demo.json", "listener": "127.0.0.1", "port": 53,
 "HTTPListener": "127.0.0.1", "persistFile": "/var/lib/mesos-dns-sidecar/state.json"}
JSON
systemctl reload mesos-dns-sidecar || fail "reload"
for i in $(seq 1 50); do getent hosts web.marathon.mesos && break; sleep 0.2; done
getent ahostsv4 web.marathon.mesos | grep -q 172.30. || fail "cluster name not resolved"
getent hosts www.example.test | grep -q 192.0.2.7 || fail "forwarded name not resolved"
dpkg --purge mesos-dns-sidecar || fail "purge"
cmp /etc/resolv.conf /test/resolv.before || fail "resolv.conf not restored byte for byte"
if grep -qi ' 0100007F:0035 ' /proc/net/udp; then fail "something still listens on 127.0.0.1:53"; fi
systemctl is-enabled mesos-dns-sidecar 2>/dev/null && fail "unit still enabled"
echo PASS >/test/result
systemctl poweroff --no-block
EOF
chmod +x "$work/inside.sh"
cat > "$root/etc/systemd/system/pkgtest.service" <<'EOF'
[Unit]
Description=mesos-dns-sidecar package test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/test/inside.sh
[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/pkgtest.service "$root/etc/systemd/system/multi-user.target.wants/pkgtest.service"
timeout 300 systemd-nspawn -q --register=no --keep-unit --resolv-conf=off --timezone=off --link-journal=no \
  -D "$root" --bind="$work:/test" --boot >/dev/null 2>&1 || true
cp "$work/log" /tmp/mesos-dns-sidecar-install-test.log 2>/dev/null || true
grep -E '^(\+ |FAIL)' "$work/log" 2>/dev/null | tail -n 40
result=$(cat "$work/result" 2>/dev/null || echo "no result")
echo "package install test: $result"
[ "$result" = PASS ]

#!/usr/bin/env bash
# Install test, run as root by CI: builds both packages; checks the .rpm with rpm (file list,
# scripts, install into a scratch root); then boots a minimal Debian with systemd in
# systemd-nspawn, in a network namespace of its own with two upstream resolvers and a veth pair
# to a second namespace that stands in for a container, and there (packaging/test-install-inside.sh),
# with a glibc query loop of cluster and forwarded names running:
#   install with a config placed first (plain non-interactive dpkg -i), 5 restarts, 5 reloads,
#   a reinstall and an upgrade to a newer package version: 0 failed queries;
#   a DHCP renewal through the dhclient hook, then a NetworkManager dispatcher event: the new
#   upstream is used within 10 s;
#   the opt-in link-local address: the "container" namespace resolves through 169.254.20.10,
#   NOTRACK rules in place;
#   kill -9 with restarts off: forwarded names resolve within 2 s (the guard's fallback),
#   cluster names come back with the daemon;
#   remove: resolv.conf back byte for byte, hooks, interface, rules, sockets gone; then purge.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-install.sh needs root" >&2; exit 1; }
for tool in debootstrap systemd-nspawn rpm dnsmasq ip; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
rm -rf target/packages
packaging/build.sh >/dev/null
deb=$(ls target/packages/*.deb | head -n1)
rpm=$(ls target/packages/*.rpm | head -n1)
# The same build as a newer package version, for the upgrade.
mkdir -p target/packages/upgrade
cargo deb --no-build --no-strip --deb-revision 2 --output target/packages/upgrade/ >/dev/null
upgrade=$(ls target/packages/upgrade/*.deb | head -n1)
cargo build --release --quiet --example resolve_loop

echo "== rpm: $rpm"
files=$(rpm -qpl "$rpm")
for f in /usr/bin/mesos-dns-sidecar /usr/lib/systemd/system/mesos-dns-sidecar.service \
  /usr/lib/systemd/system/mesos-dns-sidecar.socket /usr/lib/systemd/system/mesos-dns-sidecar-guard.service \
  /usr/lib/mesos-dns-sidecar/package /usr/share/mesos-dns-sidecar/config.json; do
  grep -qx "$f" <<<"$files" || { echo "rpm lacks $f" >&2; exit 1; }
done
scripts=$(rpm -qp --scripts "$rpm")
grep -q "package configure" <<<"$scripts" && grep -q "package remove" <<<"$scripts" \
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
if [ ! -x "$cache/usr/bin/systemctl" ] || [ ! -x "$cache/usr/sbin/useradd" ] || [ ! -x "$cache/usr/sbin/nft" ]; then
  rm -rf "$cache"
  mkdir -p "$(dirname "$cache")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,passwd,iproute2,nftables \
    bookworm "$cache" http://deb.debian.org/debian >/dev/null
fi
hostns=mds-test-host
ctrns=mds-test-ctr
root=""
work=""
upstream_pids=""
nspawn_pid=""
cleanup() {
  [ -n "$nspawn_pid" ] && kill "$nspawn_pid" 2>/dev/null
  for p in $upstream_pids; do kill "$p" 2>/dev/null || true; done
  ip netns del "$ctrns" 2>/dev/null || true
  ip netns del "$hostns" 2>/dev/null || true
  rm -rf "/etc/netns/$ctrns"
  [ -n "$root" ] && rm -rf "$root"
  [ -n "$work" ] && rm -rf "$work"
  return 0
}
trap cleanup EXIT
cleanup
root=$(mktemp -d /var/tmp/mds-root.XXXXXX)
work=$(mktemp -d)
cp -a "$cache/." "$root/"
cp "$deb" "$work/pkg.deb"
cp "$upgrade" "$work/upgrade.deb"
cp target/release/examples/resolve_loop "$work/resolve_loop"
cp src/mesos/demo_state.json "$work/demo.json"
cp packaging/test-install-inside.sh "$work/inside.sh"
chmod +x "$work/inside.sh"

# The booted system's network: its own namespace, with two upstream resolvers on its loopback
# (the original one answers example.test with 192.0.2.7; the one DHCP hands out later, with
# 192.0.2.8) and a veth pair to a second namespace standing in for a container.
ip netns add "$hostns"
ip netns add "$ctrns"
ip -n "$hostns" link set lo up
ip -n "$ctrns" link set lo up
ip link add mds-h netns "$hostns" type veth peer name mds-c netns "$ctrns"
ip -n "$hostns" addr add 169.254.53.1/30 dev mds-h
ip -n "$ctrns" addr add 169.254.53.2/30 dev mds-c
ip -n "$hostns" link set mds-h up
ip -n "$ctrns" link set mds-c up
ip -n "$ctrns" route add 169.254.20.10/32 via 169.254.53.1
mkdir -p "/etc/netns/$ctrns"
echo "nameserver 169.254.20.10" > "/etc/netns/$ctrns/resolv.conf"
for u in "127.0.0.2 192.0.2.7" "127.0.0.3 192.0.2.8"; do
  set -- $u
  ip netns exec "$hostns" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
    --listen-address="$1" --bind-interfaces --port=53 --address=/example.test/"$2" &
  upstream_pids="$upstream_pids $!"
done

printf '# original resolv.conf of this host\nsearch corp.example\nnameserver 127.0.0.2\noptions ndots:1\n' \
  > "$root/etc/resolv.conf"
cat > "$root/etc/systemd/system/pkgtest.service" <<'UNIT'
[Unit]
Description=mesos-dns-sidecar package test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/test/inside.sh
TimeoutStartSec=600
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/pkgtest.service "$root/etc/systemd/system/multi-user.target.wants/pkgtest.service"
timeout 600 systemd-nspawn -q --register=no --keep-unit --resolv-conf=off --timezone=off --link-journal=no \
  --network-namespace-path="/run/netns/$hostns" --capability=CAP_NET_ADMIN \
  -D "$root" --bind="$work:/test" --boot >/dev/null 2>&1 &
nspawn_pid=$!
# When the booted system asks, the "container" namespace resolves through the link-local address
# (its resolv.conf, from /etc/netns, names only 169.254.20.10).
while kill -0 "$nspawn_pid" 2>/dev/null; do
  if [ -e "$work/ctr-ask" ] && [ ! -e "$work/ctr-done" ]; then
    { ip netns exec "$ctrns" getent ahosts web.marathon.mesos &&
      ip netns exec "$ctrns" getent hosts ctr.example.test; } > "$work/ctr-answer" 2>&1 || true
    touch "$work/ctr-done"
  fi
  sleep 0.2
done
wait "$nspawn_pid" || true
nspawn_pid=""
cp "$work/log" /tmp/mesos-dns-sidecar-install-test.log 2>/dev/null || true
grep -E '^(\+ |FAIL|MEASURED)' "$work/log" 2>/dev/null | tail -n 60
result=$(cat "$work/result" 2>/dev/null || echo "no result")
echo "package install test: $result"
[ "$result" = PASS ]

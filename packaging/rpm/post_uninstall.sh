if [ "$1" = 0 ]; then
  rm -f /etc/dhcp/dhclient-enter-hooks.d/mesos-dns-sidecar
  rm -f /etc/mesos-dns-sidecar/resolv.conf.orig /etc/mesos-dns-sidecar/resolv.conf.orig.link \
        /etc/mesos-dns-sidecar/resolv.conf.orig.absent
  rm -rf /var/lib/mesos-dns-sidecar
fi
[ -d /run/systemd/system ] && systemctl daemon-reload || true
exit 0

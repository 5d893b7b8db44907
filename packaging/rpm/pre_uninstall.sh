# $1 is 0 on erase, 1 on upgrade: only give resolv.conf back and stop on erase.
if [ "$1" = 0 ]; then
  /usr/bin/mesos-dns-sidecar resolvconf restore || true
  if [ -d /run/systemd/system ]; then
    systemctl stop mesos-dns-sidecar.service || true
    systemctl disable mesos-dns-sidecar.service >/dev/null 2>&1 || true
  fi
fi
exit 0

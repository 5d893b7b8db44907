chgrp mesos-dns-sidecar /etc/mesos-dns-sidecar/config.json 2>/dev/null || true
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable mesos-dns-sidecar.service >/dev/null 2>&1 || true
  systemctl restart mesos-dns-sidecar.service || \
    echo "mesos-dns-sidecar: the service did not start; see 'journalctl -u mesos-dns-sidecar'." >&2
  /usr/bin/mesos-dns-sidecar resolvconf install --check 127.0.0.1:53 --wait 30 || \
    echo "mesos-dns-sidecar: the daemon does not answer yet; /etc/resolv.conf left unchanged." >&2
fi
exit 0

getent group mesos-dns-sidecar >/dev/null || groupadd --system mesos-dns-sidecar
getent passwd mesos-dns-sidecar >/dev/null || useradd --system -g mesos-dns-sidecar --no-create-home \
  --home-dir /var/lib/mesos-dns-sidecar --shell /sbin/nologin mesos-dns-sidecar
exit 0

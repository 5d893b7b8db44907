/usr/lib/mesos-dns-sidecar/package configure
exit 0

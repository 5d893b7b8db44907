# $1 is 0 on erase, 1 on upgrade: only give resolv.conf back and stop on erase.
if [ "$1" = 0 ]; then
  /usr/lib/mesos-dns-sidecar/package remove
fi
exit 0

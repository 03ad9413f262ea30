#!/usr/bin/env bash
# without_kvm.sh COMMAND [ARGS...]: runs COMMAND as on a host without KVM. In a private mount
# namespace, /dev becomes a tmpfs holding everything the host's /dev has except kvm (device
# nodes bound, directories such as pts and shm bound with what is under them, symlinks
# copied), so nothing outside the namespace changes. `.ci/run` uses it for
# VMDESC_CI_FORCE_BED=1: the no-KVM path of CI, taken on a host that has KVM, where a test
# outside the KVM folders that quietly needs /dev/kvm fails as it would there.
# Needs root (CI runs as root) or unprivileged user namespaces (then --map-root-user).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
user=()
[ "$(id -u)" = 0 ] || user=(--map-root-user)
exec unshare --mount "${user[@]}" --propagation private bash -c '
set -e
old=$(mktemp -d)
mount --rbind /dev "$old"
mount -t tmpfs -o mode=755 tmpfs /dev
for e in "$old"/* "$old"/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n=${e##*/}
  [ "$n" = kvm ] && continue
  # A bound ptmx looks for its devpts beside itself, in the hidden old /dev: use the
  # pts instance bound below instead (what a devpts with ptmxmode does on its own).
  if [ "$n" = ptmx ]; then ln -s pts/ptmx /dev/ptmx; continue; fi
  if [ -L "$e" ]; then cp -a "$e" "/dev/$n"
  elif [ -d "$e" ]; then mkdir "/dev/$n"; mount --rbind "$e" "/dev/$n"
  else touch "/dev/$n"; mount --bind "$e" "/dev/$n"; fi
done
umount -l "$old"
rmdir "$old"
exec "$@"
' bash "$@"

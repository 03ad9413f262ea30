#!/bed/busybox sh
# PID 1 of the nested test bed (tests/nested/): mounts the kernel's file systems, loads
# KVM into this emulated CPU (and tun for TAP devices), runs the host's command in the project root, reports its exit
# status and powers the VM off.
#
# Serial ports (QEMU -serial, in order): ttyS0 the kernel console and this script's own
# messages (a log file on the host), ttyS1 the command's stdout and stderr (streamed to the
# host), ttyS2 status lines for the host: "ready <uptime>" when the command starts,
# "exit <status>" when it ends. The command and its settings come through QEMU's fw_cfg:
# opt/vmdesc/config (sh assignments) and opt/vmdesc/command (an sh script).
bb=/bed/busybox
status() { echo "$*" >/dev/ttyS2; }
die() {
  echo "bed init: $*"
  $bb poweroff -f
}

$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$bb ln -sf pts/ptmx /dev/ptmx
$bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$bb ln -sf /proc/self/fd /dev/fd

. /bed/image.env
# The project's own Linux tests build their initramfs around this busybox (busybox-static).
export VMDESC_BUSYBOX=/bed/busybox
export PATH=/bed/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/bed/busybox-bin
export HOME DENO_DIR VMDESC_BED_ROOT
export VMDESC_IN_BED=1 DENO_NO_UPDATE_CHECK=1 TERM=dumb

$bb insmod /bed/modules/qemu_fw_cfg.ko || die "cannot load qemu_fw_cfg"
fw=/sys/firmware/qemu_fw_cfg/by_name/opt/vmdesc
$bb cat $fw/config/raw >/bed/config.sh || die "no opt/vmdesc/config from the host"
$bb cat $fw/command/raw >/bed/command.sh || die "no opt/vmdesc/command from the host"
BED_KVM=1
. /bed/config.sh

# KVM: irqbypass before kvm, kvm before the backend the CPU offers (QEMU's TCG `-cpu max`
# offers AMD SVM with nested paging).
if [ "$BED_KVM" = 1 ]; then
  $bb insmod /bed/modules/irqbypass.ko || die "cannot load irqbypass"
  $bb insmod /bed/modules/kvm.ko || die "cannot load kvm"
  if $bb grep -qw svm /proc/cpuinfo; then
    $bb insmod /bed/modules/kvm-amd.ko || die "cannot load kvm-amd"
  elif $bb grep -qw vmx /proc/cpuinfo; then
    $bb insmod /bed/modules/kvm-intel.ko || die "cannot load kvm-intel"
  else
    die "the emulated CPU offers neither svm nor vmx"
  fi
  [ -c /dev/kvm ] || die "/dev/kvm did not appear"
fi

# TAP devices for the network tests (tests/net/): /dev/net/tun appears with the module.
$bb insmod /bed/modules/tun.ko || die "cannot load tun"
[ -c /dev/net/tun ] || die "/dev/net/tun did not appear"
# The loopback device up, as on any booted system (nothing else is configured: the network
# tests make their own namespaces and TAP devices).
$bb ip link set lo up || die "cannot bring up lo"

# The command writes into a pipe, as under CI on the host (a terminal would change what
# programs print); `cat` copies it to ttyS1 byte for byte (raw: no \n -> \r\n, no echo).
# The last close of ttyS1 waits until the UART has sent everything, so nothing is lost at
# power-off.
$bb stty -F /dev/ttyS1 raw -echo
status "ready $($bb cut -d' ' -f1 /proc/uptime)"
{
  (cd "$VMDESC_BED_ROOT" && exec /bed/busybox sh /bed/command.sh) </dev/null 2>&1
  echo $? >/bed/exit-status
} | $bb cat >/dev/ttyS1
status "exit $($bb cat /bed/exit-status)"
$bb sync
$bb poweroff -f

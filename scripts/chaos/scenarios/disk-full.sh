# The disk under a session node's LMDB fills up: its data directory is a tmpfs, and a filler
# file takes every free byte during the fault (offline users' inboxes keep the store growing).
# The node must refuse to acknowledge what it cannot store (clients retry), never acknowledge
# and lose; after the heal (the filler removed) it goes on.
describe() { echo "fill the disk under s1's store, then free it again"; }
setup() {
  mkdir -p "$VAR/data/s1"
  mount -t tmpfs -o size=256m meshchat-chaos "$VAR/data/s1"
  on_cleanup "umount -l '$VAR/data/s1'"
  cluster_up
}
inject() {
  local free
  # dd stops with ENOSPC, which is the point: what is checked is that the disk is full.
  dd if=/dev/zero of="$VAR/data/s1/filler" bs=1M >/dev/null 2>&1
  free=$(df -k --output=avail "$VAR/data/s1" | tail -1 | tr -d ' ')
  log "s1's disk full: $free KiB free"
  echo "disk-full $free" >>"$WORK/faults"
  [ "$free" -lt 1024 ] || fail "s1's disk still has $free KiB free" || return 1
  sleep "$1"
}
heal() { rm -f "$VAR/data/s1/filler"; }
teardown() { umount -l "$VAR/data/s1" 2>/dev/null || true; }

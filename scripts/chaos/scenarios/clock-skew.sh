# One session node's wall clock runs SKEW (default +90 s; try -90s) off: it is restarted with
# libfaketime preloaded (var/wrap/s2 is its launch prefix: env, so the node keeps the pid
# meshctl knows; the faketime wrapper would fork and leave the node running when stopped)
# and its monotonic clock left real, and restarted normally at the heal.
describe() { echo "s2's wall clock ${SKEW:-+90s} off (faketime)"; }
inject() {
  mkdir -p "$VAR/wrap"
  local lib
  lib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 | head -1)
  printf '%s\n' env "LD_PRELOAD=$lib" "FAKETIME=${SKEW:-+90s}" FAKETIME_DONT_FAKE_MONOTONIC=1 \
    >"$VAR/wrap/s2"
  on_cleanup "rm -f '$VAR/wrap/s2'"
  meshctl restart s2 >/dev/null || fail "meshctl restart s2" || return 1
  grep -qz "^FAKETIME=${SKEW:-+90s}$" "/proc/$(pid_of s2)/environ" ||
    fail "s2 (pid $(pid_of s2)) does not run under faketime" || return 1
  echo "clock-skew s2" >>"$WORK/faults"
  log "s2 runs $(FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "${SKEW:-+90s}" date +%T) while it is $(date +%T)"
  sleep "$1"
}
heal() {
  [ -f "$VAR/wrap/s2" ] || return 0
  rm -f "$VAR/wrap/s2"
  meshctl restart s2 >/dev/null
}

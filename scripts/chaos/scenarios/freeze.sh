# SIGSTOP of a node for FREEZE_SECONDS (default 6: longer than the 3.5 s after which peers
# declare it down), then SIGCONT; a new freeze starts every FREEZE_EVERY seconds (default 4),
# so two nodes of different roles may be frozen at once. The roles are visited in turn (a
# gateway first, then a session node, then the others): a frozen node keeps its sockets open
# and answers nothing. Each freeze is checked (state T); a fault of 5 x FREEZE_EVERY seconds
# or more must have frozen every role.
describe() { echo "freeze (SIGSTOP) a node of each role in turn, one every ${FREEZE_EVERY:-4} s for ${FREEZE_SECONDS:-6} s"; }
inject() {
  local start until every=${FREEZE_EVERY:-4} hold=${FREEZE_SECONDS:-6} id pid role left roles=()
  local i=0 next r thaws=()
  start=$(date +%s)
  until=$((start + $1))
  read -r -a roles <<<"$(role_order gateway session)"
  while [ "$(date +%s)" -lt "$until" ]; do
    role=${roles[$((i % ${#roles[@]}))]}
    i=$((i + 1))
    id=$(pick $(nodes_with "$role"))
    pid=$(pid_of "$id")
    left=$((until - $(date +%s)))
    left=$((left < hold ? left : hold))
    log "SIGSTOP $id ($role, pid $pid) for $left s"
    meshctl kill "$id" --signal STOP >/dev/null || fail "meshctl kill $id --signal STOP" || return 1
    on_cleanup "meshctl kill $id --signal CONT"
    sleep 0.2
    is_stopped "$pid" || fail "$id (pid $pid) is not stopped" || return 1
    echo "$role $id" >>"$WORK/faults"
    (sleep "$left"; log "SIGCONT $id"; meshctl kill "$id" --signal CONT >/dev/null) &
    thaws+=($!)
    next=$((start + i * every))
    [ "$next" -gt "$(date +%s)" ] && sleep $((next - $(date +%s)))
  done
  wait "${thaws[@]}"
  grep -q '^gateway ' "$WORK/faults" || fail "no gateway was frozen (fault too short?)" || return 1
  if [ "$1" -ge $((5 * every)) ]; then
    for r in gateway session group presence media; do
      grep -q "^$r " "$WORK/faults" || fail "no $r node was frozen" || return 1
    done
  fi
}
heal() { local id; for id in $(nodes_with gateway session group presence media); do meshctl kill "$id" --signal CONT >/dev/null 2>&1 || true; done; }

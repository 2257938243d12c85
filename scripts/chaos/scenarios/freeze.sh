# SIGSTOP of one node for a while (default 10 s), then SIGCONT, visiting the roles in turn (a
# gateway first, then a session node, then the others): a frozen node keeps its sockets open
# and answers nothing; peers declare it down after 3.5 s. Each freeze is checked (state T).
describe() { echo "freeze (SIGSTOP) a node of each role in turn for ${FREEZE_SECONDS:-10} s per round"; }
inject() {
  local until=$(($(date +%s) + $1)) id pid role left roles=() i=0
  read -r -a roles <<<"$(role_order gateway session)"
  while [ "$(date +%s)" -lt "$until" ]; do
    role=${roles[$((i % ${#roles[@]}))]}
    i=$((i + 1))
    id=$(pick $(nodes_with "$role"))
    pid=$(pid_of "$id")
    left=$((until - $(date +%s)))
    log "SIGSTOP $id ($role, pid $pid)"
    meshctl kill "$id" --signal STOP >/dev/null || fail "meshctl kill $id --signal STOP" || return 1
    on_cleanup "meshctl kill $id --signal CONT"
    sleep 0.2
    is_stopped "$pid" || fail "$id (pid $pid) is not stopped" || return 1
    echo "$role $id" >>"$WORK/faults"
    sleep $((left < ${FREEZE_SECONDS:-10} ? left : ${FREEZE_SECONDS:-10}))
    log "SIGCONT $id"
    meshctl kill "$id" --signal CONT >/dev/null || fail "meshctl kill $id --signal CONT" || return 1
    sleep 2
  done
  grep -q '^gateway ' "$WORK/faults" || fail "no gateway was frozen (fault too short?)"
}
heal() { local id; for id in $(nodes_with gateway session group presence media); do meshctl kill "$id" --signal CONT >/dev/null 2>&1 || true; done; }

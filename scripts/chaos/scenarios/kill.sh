# kill -9 of a node every few seconds (KILL_EVERY, default 3), visiting every role (a session
# node first, then a gateway, then the others in random order), the node of a role picked at
# random; the runner starts it again a second later, from its own state. Each kill is checked:
# the process is gone. A fault of 5 x KILL_EVERY seconds or more must have killed every role.
describe() { echo "kill -9 a node of each role in turn every ${KILL_EVERY:-3} s, restart it after 1 s"; }
inject() {  # inject SECONDS
  local start until every=${KILL_EVERY:-3} id pid role roles=() i=0 next r
  start=$(date +%s)
  until=$((start + $1))
  read -r -a roles <<<"$(role_order session gateway)"
  while [ "$(date +%s)" -lt "$until" ]; do
    role=${roles[$((i % ${#roles[@]}))]}
    i=$((i + 1))
    id=$(pick $(nodes_with "$role"))
    pid=$(pid_of "$id")
    log "kill -9 $id ($role, pid $pid)"
    kill -0 "$pid" 2>/dev/null || fail "$id is not running before its kill" || return 1
    meshctl kill "$id" --signal KILL >/dev/null || fail "meshctl kill $id" || return 1
    sleep 1
    is_gone "$pid" || fail "$id (pid $pid) still runs after kill -9" || return 1
    echo "$role $id" >>"$WORK/faults"
    restart_dead
    next=$((start + i * every))  # on a fixed beat, however long the restart took
    [ "$next" -gt "$(date +%s)" ] && sleep $((next - $(date +%s)))
  done
  grep -q '^session ' "$WORK/faults" || fail "no session node was killed (fault too short?)" || return 1
  if [ "$1" -ge $((5 * every)) ]; then
    for r in gateway session group presence media; do
      grep -q "^$r " "$WORK/faults" || fail "no $r node was killed" || return 1
    done
  fi
}
heal() { restart_dead; }

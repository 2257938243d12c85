# kill -9 of a node every few seconds, visiting every role (a session node first, then a
# gateway, then the others in random order), the node of a role picked at random; the runner
# starts it again a second later, from its own state. Each kill is checked: the process is gone.
describe() { echo "kill -9 a node of each role in turn every ${KILL_EVERY:-4} s, restart it after 1 s"; }
inject() {  # inject SECONDS
  local until=$(($(date +%s) + $1)) id pid role roles=() i=0
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
    sleep $((${KILL_EVERY:-4} - 1))
  done
  grep -q '^session ' "$WORK/faults" || fail "no session node was killed (fault too short?)"
}
heal() { restart_dead; }

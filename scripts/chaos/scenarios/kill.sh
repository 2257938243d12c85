# kill -9 of a random session, group, gateway, presence or media node every few seconds; the
# runner starts it again a second later, from its own state.
describe() { echo "kill -9 a random node every ${KILL_EVERY:-4} s, restart it after 1 s"; }
inject() {  # inject SECONDS
  local until=$(($(date +%s) + $1)) id
  while [ "$(date +%s)" -lt "$until" ]; do
    id=$(pick $(nodes_with gateway session group presence media))
    log "kill -9 $id"
    meshctl kill "$id" --signal KILL >/dev/null 2>&1 || true
    sleep 1
    restart_dead
    sleep $((${KILL_EVERY:-4} - 1))
  done
}
heal() { restart_dead; }

# SIGSTOP of one random node for a while (default 10 s), then SIGCONT: a frozen node keeps its
# sockets open and answers nothing; peers declare it down after 3.5 s.
describe() { echo "freeze (SIGSTOP) one random node for ${FREEZE_SECONDS:-10} s per round"; }
inject() {
  local until=$(($(date +%s) + $1)) id left
  while [ "$(date +%s)" -lt "$until" ]; do
    id=$(pick $(nodes_with gateway session group presence media))
    left=$((until - $(date +%s)))
    log "SIGSTOP $id"
    meshctl kill "$id" --signal STOP >/dev/null
    on_cleanup "meshctl kill $id --signal CONT"
    sleep $((left < ${FREEZE_SECONDS:-10} ? left : ${FREEZE_SECONDS:-10}))
    log "SIGCONT $id"
    meshctl kill "$id" --signal CONT >/dev/null
    sleep 2
  done
}
heal() { local id; for id in $(nodes_with gateway session group presence media); do meshctl kill "$id" --signal CONT >/dev/null 2>&1 || true; done; }

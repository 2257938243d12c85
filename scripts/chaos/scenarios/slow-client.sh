# A bandwidth-starved population: during the fault, a second workload (users "slow*") chats
# from its own network namespace whose link is throttled to SLOW_RATE (default 64kbit, tc tbf
# both ways). The gateways must hold their memory bound and lose nothing; the main population
# must not notice; the slow one gets everything in the end. Both histories are judged.
describe() { echo "a population of clients on a ${SLOW_RATE:-64kbit} link next to the others"; }
setup() {
  netns_cluster_up
  ip netns add mc-slow
  on_cleanup "ip netns del mc-slow"
  ip link add mcvslow type veth peer name eth0 netns mc-slow
  on_cleanup "ip link del mcvslow"
  ip link set mcvslow master mcbr0 up
  ip -n mc-slow addr add "$NET.200/24" dev eth0
  ip -n mc-slow link set eth0 up
  ip -n mc-slow link set lo up
  local rate=${SLOW_RATE:-64kbit}
  tc qdisc add dev mcvslow root tbf rate "$rate" burst 16kbit latency 2s  # to the clients
  ip netns exec mc-slow tc qdisc add dev eth0 root tbf rate "$rate" burst 16kbit latency 2s
}
inject() {
  tc qdisc show dev mcvslow | grep -q tbf || fail "no rate limit on the slow link" || return 1
  local gws
  gws=$(paste -sd, "$VAR/client-endpoints")
  ip netns exec mc-slow "$BIN/meshchat-chaos" workload --gateways "$gws" \
    --secret-file "$VAR/cluster.secret" --log "$WORK/slow-history.tsv" --seconds "$1" \
    --users 6 --offline 0 --prefix slow --pace-ms 0 >"$WORK/slow-workload.log" 2>&1 &
  SLOW_PID=$!
  on_cleanup "kill $SLOW_PID"
  sleep "$1"
}
heal() {
  [ -n "${SLOW_PID:-}" ] && wait "$SLOW_PID" 2>/dev/null
  SLOW_PID=""
}
extra_check() {
  echo "--- the slow population"
  "$BIN/meshchat-chaos" check --log "$WORK/slow-history.tsv"
}

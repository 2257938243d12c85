# A network partition: s1 (in its own network namespace) is cut off from every other node,
# both ways for the first half of the fault, then one way (it hears nothing, its packets still
# go out) for the second half. nft rules inside s1's namespace; the namespaces go at the end.
describe() { echo "partition s1 from the other nodes: both ways, then one way"; }
setup() { netns_cluster_up; }
others() {
  local id list=""
  for id in $(nodes_with gateway session group presence media); do
    [ "$id" = s1 ] || list+="${list:+, }$(addr_of "$id")"
  done
  echo "$list"
}
inject() {
  local half=$(($1 / 2)) peers
  peers=$(others)
  ip netns exec mc-s1 nft add table inet chaos
  ip netns exec mc-s1 nft add chain inet chaos in '{ type filter hook input priority 0; }'
  ip netns exec mc-s1 nft add chain inet chaos out '{ type filter hook output priority 0; }'
  ip netns exec mc-s1 nft add rule inet chaos in ip saddr "{ $peers }" counter drop &&
    ip netns exec mc-s1 nft add rule inet chaos out ip daddr "{ $peers }" counter drop ||
    fail "nft rules in mc-s1" || return 1
  log "s1 cut off both ways from $peers"
  sleep "$half"
  ip netns exec mc-s1 nft flush chain inet chaos out
  log "s1 cut off one way (it hears nothing)"
  sleep $(($1 - half))
  local dropped
  dropped=$(nft_dropped ip netns exec mc-s1 nft list chain inet chaos in)
  log "dropped $dropped packets to s1"
  echo "partition $dropped" >>"$WORK/faults"
  [ "$dropped" -gt 0 ] || fail "the rules dropped nothing"
}
heal() { ip netns exec mc-s1 nft delete table inet chaos 2>/dev/null || true; }

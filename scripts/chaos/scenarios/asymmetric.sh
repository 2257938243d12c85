# One direction of one link silenced: s1 stops hearing gw1 (gw1's packets to s1's mesh port
# are dropped inside s1's namespace) for longer than the heartbeat timeout, while gw1 still
# hears s1 and never sees it go down. s1 declares gw1 down and forgets its connections; the
# connection digests must bring them back (clients connected through gw1 receive again).
# Checked: the rule dropped packets and s1 logged gw1 down.
describe() { echo "s1 deaf to gw1 (one direction of one link) for the fault"; }
setup() { netns_cluster_up; }
inject() {
  local gw dropped
  gw=$(addr_of gw1)
  ip netns exec mc-s1 nft add table inet chaos &&
    ip netns exec mc-s1 nft add chain inet chaos in '{ type filter hook input priority 0; }' &&
    ip netns exec mc-s1 nft add rule inet chaos in ip saddr "$gw" tcp dport 7100 counter drop ||
    fail "nft rules in mc-s1" || return 1
  log "s1 hears nothing from gw1 ($gw)"
  sleep "$1"
  dropped=$(nft_dropped ip netns exec mc-s1 nft list chain inet chaos in)
  log "dropped $dropped packets from gw1"
  echo "asymmetric $dropped" >>"$WORK/faults"
  [ "$dropped" -gt 0 ] || fail "the rule dropped nothing" || return 1
  grep -q "peer gw1 down" "$VAR/log/s1.log" || fail "s1 never declared gw1 down (fault shorter than the heartbeat timeout?)"
}
heal() { ip netns exec mc-s1 nft delete table inet chaos 2>/dev/null || true; }

# Random packet loss between nodes: nft drops LOSS_PERCENT (default 10) of the TCP packets to
# and from every node's mesh port on loopback (numgen random). TCP retransmits; heartbeats may
# miss; links may be closed and made again; nothing acknowledged may be lost. The rules count
# what they dropped: a run that dropped nothing fails. (tc netem is not in this kernel.)
describe() { echo "drop ${LOSS_PERCENT:-10}% of packets between nodes"; }
inject() {
  local ports="" id p="${LOSS_PERCENT:-10}" dropped
  for id in $(nodes_with gateway session group presence media); do ports+="${ports:+, }$(mesh_port "$id")"; done
  nft add table inet meshchat_chaos || fail "nft add table" || return 1
  on_cleanup "nft delete table inet meshchat_chaos"
  nft add chain inet meshchat_chaos in '{ type filter hook input priority 0; }' &&
    nft add rule inet meshchat_chaos in iif lo tcp dport "{ $ports }" numgen random mod 100 '<' "$p" counter drop &&
    nft add rule inet meshchat_chaos in iif lo tcp sport "{ $ports }" numgen random mod 100 '<' "$p" counter drop ||
    fail "nft rules" || return 1
  log "dropping $p% on ports $ports"
  sleep "$1"
  dropped=$(nft_dropped nft list chain inet meshchat_chaos in)
  log "dropped $dropped packets"
  echo "loss $dropped" >>"$WORK/faults"
  [ "$dropped" -gt 0 ] || fail "the rules dropped nothing"
}
heal() { nft delete table inet meshchat_chaos 2>/dev/null || true; }

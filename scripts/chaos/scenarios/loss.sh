# Random packet loss between nodes: nft drops LOSS_PERCENT (default 10) of the TCP packets to
# and from every node's mesh port on loopback (numgen random). TCP retransmits; heartbeats may
# miss; nothing acknowledged may be lost. (tc netem is not in this kernel.)
describe() { echo "drop ${LOSS_PERCENT:-10}% of packets between nodes"; }
inject() {
  local ports="" id p="${LOSS_PERCENT:-10}"
  for id in $(nodes_with gateway session group presence media); do ports+="${ports:+, }$(mesh_port "$id")"; done
  nft add table inet meshchat_chaos
  on_cleanup "nft delete table inet meshchat_chaos"
  nft add chain inet meshchat_chaos in '{ type filter hook input priority 0; }'
  nft add rule inet meshchat_chaos in iif lo tcp dport "{ $ports }" numgen random mod 100 '<' "$p" drop
  nft add rule inet meshchat_chaos in iif lo tcp sport "{ $ports }" numgen random mod 100 '<' "$p" drop
  log "dropping $p% on ports $ports"
  sleep "$1"
}
heal() { nft delete table inet meshchat_chaos 2>/dev/null || true; }

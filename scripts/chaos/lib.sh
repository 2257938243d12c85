# Shared by scripts/chaos/run and the scenarios: the cluster under test, the workload, phases,
# and cleanup that runs even when interrupted. Sourced; expects BIN, WORK, VAR set.

meshctl() { "$BIN/meshctl" --var "$VAR" "$@"; }
now_ms() { date +%s%3N; }
log() { echo "chaos: $*" >&2; }
phase() { echo "$1 $(now_ms)" >>"$WORK/phases"; log "$1"; }

# Nodes of the map with a role: nodes_with ROLE...
nodes_with() {
  local roles="$*"
  awk -v roles=" $roles " '$1 == "node" && index(roles, " " $3 " ") { print $2 }' "$VAR/cluster.map"
}
pick() { shuf -n1 -e "$@"; }
# Roles in the order faults visit them: the ones named first (each at least once while the
# fault lasts long enough), then the others shuffled; then again. role_order ROLE...
role_order() {
  local first="$*" r rest=()
  for r in gateway session group presence media; do
    case " $first " in *" $r "*) ;; *) rest+=("$r") ;; esac
  done
  echo "$first $(shuf -e "${rest[@]}" | paste -sd' ')"
}
# fail MESSAGE: the fault could not be injected or did not take effect (the run fails).
fail() { log "FAULT NOT INJECTED: $*"; return 1; }
# Whether a process is gone: no such pid, or a zombie not yet reaped.
is_gone() {
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
  [ -z "$st" ] || [ "$st" = Z ]
}
# Whether a process is stopped (SIGSTOP took): state T in /proc.
is_stopped() { [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = T ]; }
# Packets an nft rule with a counter dropped: nft_dropped NFT_ARGS... (e.g. inet chaos in)
nft_dropped() {
  "$@" 2>/dev/null | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}
pid_of() { cat "$VAR/run/$1.pid" 2>/dev/null || echo 0; }
mesh_port() {  # the TCP port of a node's mesh endpoint
  awk -v id="$1" '$1 == "node" && $2 == id { for (i = 4; i <= NF; i++) if ($i ~ /^mesh=/) { sub(/.*:/, "", $i); print $i } }' "$VAR/cluster.map"
}

# The cluster: a local mesh on loopback (several of each keyed role).
cluster_up() {
  # --split: every node a process of its own, as on one machine per node, so a fault hits one.
  meshctl up --split --gateways 2 --sessions 3 --groups 2 --presence 1 --media-nodes 1 "$@" >"$WORK/up.log" 2>&1 ||
    { cat "$WORK/up.log" >&2; return 1; }
}

# Heals that must run whatever happened (scenarios add theirs with on_cleanup).
CLEANUPS=()
on_cleanup() { CLEANUPS+=("$1"); }
run_cleanups() {
  local i
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
  CLEANUPS=()
}

start_workload() {  # start_workload SECONDS [extra args]
  local seconds=$1
  shift
  local gws
  gws=$(paste -sd, "$VAR/client-endpoints")
  "$BIN/meshchat-chaos" workload --gateways "$gws" --secret-file "$VAR/cluster.secret" \
    --log "$WORK/history.tsv" --seconds "$seconds" --users "${USERS:-16}" \
    --offline "${OFFLINE:-4}" "$@" \
    >"$WORK/workload.log" 2>&1 &
  WORKLOAD_PID=$!
  on_cleanup "kill $WORKLOAD_PID"
}

# Restarts every node that is not running (after kills), each from its own state.
restart_dead() {
  local id
  for id in $(nodes_with gateway session group presence media); do
    kill -0 "$(pid_of "$id")" 2>/dev/null || meshctl start "$id" >>"$WORK/restarts.log" 2>&1 || true
  done
}

# Scenarios may replace these.
setup() { cluster_up; }
teardown() { :; }

# A cluster whose nodes each live in their own network namespace (mc-ID) on a bridge, so the
# network between them can be cut: our own test hosts at 10.213.0.0/24. Nodes are started
# through var/wrap/ID ("ip netns exec mc-ID"), the workload reaches the gateways over the bridge.
NET=10.213.0
netns_cluster_up() {
  local ids=(gw1 gw2 s1 s2 s3 g1 g2 p1 m1) i=0 id ip role key
  mkdir -p "$VAR"/{run,log,data,wrap,opts,keys}
  chmod 700 "$VAR/keys"
  netns_leftovers
  ip link add mcbr0 type bridge
  on_cleanup "ip link del mcbr0"
  ip addr add "$NET.1/24" dev mcbr0
  ip link set mcbr0 up
  {
    echo "epoch 1"
    for id in "${ids[@]}"; do
      i=$((i + 1))
      ip="$NET.$((10 + i))"
      ip netns add "mc-$id"
      on_cleanup "ip netns del mc-$id"
      ip link add "mcv$i" type veth peer name eth0 netns "mc-$id"
      on_cleanup "ip link del mcv$i"  # at once: a namespace's own links go asynchronously
      ip link set "mcv$i" master mcbr0 up
      ip -n "mc-$id" addr add "$ip/24" dev eth0
      ip -n "mc-$id" link set eth0 up
      ip -n "mc-$id" link set lo up
      printf '%s\n' ip netns exec "mc-$id" >"$VAR/wrap/$id"
      # Mesh links over CurveZMQ, as in production: a keypair per node (meshctl start passes
      # var/keys/ID.key), the public keys in the map.
      key="curve=$(meshctl keygen "$VAR/keys/$id.key" | tail -1)"
      case $id in
        gw*) echo "node $id gateway mesh=tcp://$ip:7100 client=$ip:7000 $key"
             echo "tcp://$ip:7000" >>"$VAR/client-endpoints" ;;
        s*) echo "node $id session mesh=tcp://$ip:7100 $key" ;;
        g*) echo "node $id group mesh=tcp://$ip:7100 $key" ;;
        p*) echo "node $id presence mesh=tcp://$ip:7100 pub=tcp://$ip:7200 $key" ;;
        m*) echo "node $id media mesh=tcp://$ip:7100 $key" ;;
      esac
      echo "$id $ip" >>"$WORK/addresses"
    done
    echo "operator chaos curve=$(meshctl keygen "$VAR/keys/operator.key" | tail -1)"
  } >"$VAR/cluster.map"
  # Test hosts on a private bridge: clients over plain TCP, asked for by name.
  echo "client_tls=off" >"$VAR/node.opts"
  head -c 24 /dev/urandom | base64 >"$VAR/cluster.secret"
  chmod 600 "$VAR/cluster.secret"
  for id in "${ids[@]}"; do meshctl start "$id" >>"$WORK/up.log" 2>&1 & done
  wait
  grep -q "did not answer\|exited" "$WORK/up.log" && { cat "$WORK/up.log" >&2; return 1; }
  sleep 4  # heartbeats: every node sees its peers
}
# What an interrupted run may have left: links first (deleting one end removes the pair).
netns_leftovers() {
  local l n
  for l in $(ip -o link show | grep -o 'mcv[0-9a-z]*' | sort -u); do ip link del "$l" 2>/dev/null || true; done
  ip link del mcbr0 2>/dev/null || true
  for n in $(ip netns list | awk '$1 ~ /^mc-/ { print $1 }'); do ip netns del "$n"; done
}
addr_of() { awk -v id="$1" '$1 == id { print $2 }' "$WORK/addresses"; }

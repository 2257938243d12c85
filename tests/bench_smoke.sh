#!/usr/bin/env bash
# Smoke run of every benchmark workload (seconds, small numbers) so the tools never rot.
# The full runs are in bench/README.md; figures here mean nothing.
set -euo pipefail
bin=$1
src=$2
home=$(mktemp -d /tmp/meshchat-bench-smoke.XXXXXX)
trap 'MESHCHAT_HOME=$home "$bin/meshctl" down >/dev/null 2>&1 || true; rm -rf "$home"' EXIT
export MESHCHAT_HOME=$home
"$bin/meshctl" up >/dev/null
# run OK_CODES CMD...: sets $out; any other exit code prints the output (a failure inside $()
# is otherwise silent). w1/w2 exit 1 when no rate met the latency target: a figure, not a
# broken tool, on a shared 2-core machine.
run() {
  local ok=$1 rc=0
  shift
  out=$("$@") || rc=$?
  [[ " $ok " == *" $rc "* ]] || { echo "$* exited $rc:"; echo "$out"; exit 1; }
}
check() {  # check WORKLOAD OUTPUT
  grep -q "^result workload=$1 " <<<"$2" || { echo "no result line for $1:"; echo "$2"; exit 1; }
}
run "0 1" "$bin/meshchat-loadgen" w1 --pairs 20 --rates 100,200 --step 1 --max-p99-ms 2000
check w1 "$out"
grep -q "delivered=100 " <<<"$out" || { echo "w1 did not deliver every message:"; echo "$out"; exit 1; }
run "0 1" "$bin/meshchat-loadgen" w2 --groups 2 --size 5 --rates 20 --step 1 --max-p99-ms 2000
check w2 "$out"
grep -q "deliveries=80 " <<<"$out" || { echo "w2 did not deliver every message:"; echo "$out"; exit 1; }
run 0 "$bin/meshchat-loadgen" w3 --conns 60 --procs 2
check w3 "$out"
run 0 "$bin/meshchat-loadgen" w4 --clients 20 --pending 3
check w4 "$out"
run 0 "$bin/meshchat-loadgen" w5 --files 2 --bytes 300000
check w5 "$out"
run "0 1" "$bin/meshchat-loadgen" w1 --chatty --pairs 10 --rates 100 --step 1 --max-p99-ms 2000
grep -q "typing=100 " <<<"$out" || { echo "w1 --chatty: typing notices missing:"; echo "$out"; exit 1; }
run 0 "$bin/meshchat-loadgen" abuse --seconds 1 --never-read 1 --feeders 2
check abuse "$out"
"$bin/meshctl" down >/dev/null
run 0 "$src/bench/overload" --quick --bin "$bin"
grep -q "^# mix=even degradation=on summary=1" <<<"$out" || { echo "overload: no summary:"; echo "$out"; exit 1; }
if command -v mosquitto >/dev/null; then
  run 0 "$src/bench/compare" --quick --bin "$bin"
  check compare "$out"
fi
echo "bench smoke: 1 passed, 0 failed"

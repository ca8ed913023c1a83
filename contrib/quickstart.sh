#!/usr/bin/env bash
# Set everything up and run a real scan.
#   contrib/quickstart.sh                 scan the bundled loopback fleet (1,024 simulated hosts)
#   contrib/quickstart.sh TARGETS_FILE    scan the given targets (addresses, ip,mx lines, or
#                                         'mxsurvey resolve' output): real servers, port 25
# Installs the Debian packages, builds into build/, writes results to out/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash contrib/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p out
bin=build/cli/mxsurvey

if [ $# -ge 1 ]; then
  echo "== scanning $1 (port 25; name your scanner with MXS_EHLO_NAME=fqdn)"
  "$bin" scan ${MXS_EHLO_NAME:+--ehlo-name "$MXS_EHLO_NAME"} -o out/results.jsonl "$1"
else
  fleetdir=$(mktemp -d)
  trap 'kill "$fleet_pid" 2>/dev/null; rm -rf "$fleetdir"' EXIT
  build/tests/fleet/mxsurvey-fleet serve --port 0 --certdir "$fleetdir" --seed 1 \
    --ready-file "$fleetdir/ready" &
  fleet_pid=$!
  for _ in $(seq 100); do [ -s "$fleetdir/ready" ] && break; sleep 0.1; done
  port=$(cat "$fleetdir/ready")
  echo "== scanning the loopback fleet: 1,024 simulated mail servers on 127.3.0.0/22, port $port"
  build/tests/fleet/mxsurvey-fleet truth 127.3.0.0/22 --seed 1 |
    python3 -c 'import json,sys
for l in sys.stdin:
    t=json.loads(l); print(t["ip"]+","+t["mx"])' > out/fleet-targets.txt
  "$bin" scan --port "$port" --no-default-blocklist --ca-file "$fleetdir/ca.pem" \
    --ehlo-name quickstart.mxsurvey.test --per-net 1024 --concurrency 512 \
    --greeting-timeout 5s --timeout 5s --deadline 10s --retry-delay 1s \
    -o out/results.jsonl out/fleet-targets.txt
fi
echo "== results: out/results.jsonl ($(wc -l < out/results.jsonl) records)"
python3 - <<'PY'
import collections, json
recs = [json.loads(l) for l in open("out/results.jsonl") if l.strip()]
res = [r for r in recs if r.get("type") == "result"]
oc = collections.Counter(r["outcome"] for r in res)
ver = collections.Counter(r["tls"]["version"] for r in res if r.get("tls"))
print("outcomes:", ", ".join(f"{k} {v}" for k, v in oc.most_common()))
print("TLS versions:", ", ".join(f"{k} {v}" for k, v in ver.most_common()))
PY

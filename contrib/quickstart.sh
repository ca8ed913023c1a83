#!/usr/bin/env bash
# Set everything up and run a real scan.
#   contrib/quickstart.sh                 the bundled loopback fleet: 1,024 simulated mail
#                                         servers scanned, stored in mxsurvey's own
#                                         PostgreSQL cluster, and reported
#   contrib/quickstart.sh DOMAINS_FILE    a real survey of the domains in the file (one per
#                                         line, or rank,domain): resolve, scan port 25,
#                                         store, report. Name your scanner: set
#                                         MXS_EHLO_NAME to a FQDN that explains the scan.
# Installs the Debian packages, builds into build/, writes out/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash contrib/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p out
bin=build/cli/mxsurvey

if [ $# -ge 1 ]; then
  echo "== surveying the domains in $1 (port 25)"
  "$bin" survey ${MXS_EHLO_NAME:+--ehlo-name "$MXS_EHLO_NAME"} -o out/results.jsonl \
    --report-file out/report.html --report html "$1"
  "$bin" report --format text
  echo "== JSON records: out/results.jsonl; report: out/report.html"
  exit 0
fi

fleetdir=$(mktemp -d)
trap 'kill "$fleet_pid" 2>/dev/null || true; rm -rf "$fleetdir"' EXIT
build/tests/fleet/mxsurvey-fleet serve --port 0 --certdir "$fleetdir" --seed 1 \
  --delay-ms 1000 --ready-file "$fleetdir/ready" >"$fleetdir/fleet.log" 2>&1 &
fleet_pid=$!
for _ in $(seq 200); do [ -s "$fleetdir/ready" ] && break; sleep 0.05; done
port=$(cat "$fleetdir/ready")
echo "== scanning the loopback fleet: 1,024 simulated mail servers on 127.3.0.0/22, port $port"
build/tests/fleet/mxsurvey-fleet truth 127.3.0.0/22 --seed 1 |
  python3 -c 'import json,sys
for l in sys.stdin:
    t = json.loads(l); print(t["ip"] + "," + t["mx"])' > out/fleet-targets.txt
"$bin" scan --port "$port" --no-default-blocklist --ca-file "$fleetdir/ca.pem" \
  --ehlo-name quickstart.mxsurvey.test --per-net 1024 --concurrency 512 \
  --greeting-timeout 5s --timeout 5s --deadline 10s --retry-delay 1s \
  --db auto --label "quickstart-$(date +%Y%m%dT%H%M%S)" -o out/results.jsonl out/fleet-targets.txt
echo "== report (from the views in mxsurvey's own PostgreSQL cluster)"
"$bin" report --format text
"$bin" report --format html -o out/report.html
echo "== JSON records: out/results.jsonl; report: out/report.html; stop the database: $bin db stop"

#!/usr/bin/env bash
# Benchmark (not a test): theme clustering of 1k, 10k and 100k synthetic 384-d passages.
# Prints per size the time spent clustering, the peak memory of the whole process, the theme
# count found (12 planted) and the ARI against the planted clusters.
# Targets: 100k passages in <= 60 s and <= 2 GB.
#   usage: scripts/bench-themes.sh [SIZES...]   (default: 1000 10000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)
cargo build --release --locked --quiet --example bench_themes
BIN="$CARGO_TARGET_DIR/release/examples/bench_themes"
printf '%8s %9s %9s %7s %7s %11s\n' passages cluster_s peak_MB themes ARI unassigned
for n in "${SIZES[@]}"; do
    log=$(mktemp)
    line=$(/usr/bin/time -v "$BIN" "$n" 2> "$log")
    peak_kb=$(grep "Maximum resident" "$log" | awk '{print $NF}')
    rm -f "$log"
    python3 - "$line" "$peak_kb" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); mb = int(sys.argv[2]) / 1024
print(f"{r['passages']:8d} {r['seconds']:9.2f} {mb:9.0f} {r['themes']:7d} {r['ari']:7.3f} {r['unassigned_share']:11.4f}")
PY
done

#!/usr/bin/env bash
# Benchmark (not a test): how fast the review page's "suggest more passages" follows an action.
# Runs `qualscribe themes` (real e5) on the three review-fixture interviews, replicates their
# passages to N (texts repeated, e5 vectors perturbed), imports that into a fresh project and
# accepts suggestions one by one; each update = the `move` action (one durable SQLite
# transaction) + the overview the page gets back + the code's new suggestions. Prints median and
# worst update times.
# Target: <= 200 ms per update for 2,000 passages.
#   usage: scripts/bench-suggest.sh [N=2000] [ROUNDS=30] [THEMES=3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
N="${1:-2000}"; ROUNDS="${2:-30}"; THEMES="${3:-3}"
build_release
cargo build --release --locked --quiet --example bench_suggest
out="$(mktemp -d "${TMPDIR:-/tmp}/qualscribe-bench-suggest.XXXXXX")"
trap 'rm -rf "$out"' EXIT
"$QS" themes tests/fixtures/review/entrevista_exp*.transcript.json --themes "$THEMES" -o "$out" >/dev/null
cp tests/fixtures/review/entrevista_exp*.transcript.json "$out"/  # review imports transcripts too
"$CARGO_TARGET_DIR/release/examples/bench_suggest" "$out" "$N" "$ROUNDS"

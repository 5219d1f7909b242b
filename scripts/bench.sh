#!/usr/bin/env bash
# Benchmark (not a test): the whole job on a long Spanish recording, and where the time goes.
# Builds the recording from the corpus (FLEURS Spanish, real voices; the synthetic focus group and
# interviews), runs `qualscribe run` with the base model, then transcription alone (whisper-rs via
# `qualscribe transcribe`) and faster-whisper alone (same base weights, int8), same thread count.
# Prints per-stage times, real-time factor, peak memory and the ratios the targets are about.
#   usage: scripts/bench.sh [MINUTES=60] [THREADS=2] [PAIRS=1]
# PAIRS > 1 runs `run` and `transcribe` that many times, alternating which goes first, and
# prints every pair's ratio: on a shared VM the machine's speed drifts by 10-35 % between
# processes (Whisper 332-493 s on identical 1 h work), so one pair decides nothing.
# Targets (goals, not gates): 1 h in ≤ 10 min on 2 cores; total ≤ 1.15 × transcription alone;
# faster than faster-whisper transcription alone; peak RSS ≤ 2 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
MINUTES="${1:-60}"; THREADS="${2:-2}"; PAIRS="${3:-1}"
build_release
cargo build --release --locked --quiet --example concat_audio
"$QS" models fetch --model base --model speaker --model e5 >/dev/null
source scripts/faster-whisper-env.sh
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }

C=../shared/corpus
AUDIO="$BENCH/espanol-${MINUTES}min.wav"
if [ ! -f "$AUDIO" ]; then
    "$CARGO_TARGET_DIR/release/examples/concat_audio" "$AUDIO" $((MINUTES * 60)) \
        "$C"/fleurs/flac/fleurs-es-*.flac "$C"/grupo_focal_reparto/*.wav "$C"/entrevistas_apc/*.wav
fi
OUT="$BENCH/out-long"; rm -rf "$OUT"; mkdir -p "$OUT"

whole_job() {
    /usr/bin/time -v "$QS" run "$AUDIO" --language es --threads "$THREADS" -o "$OUT/run" \
        > "$OUT/run$1.log" 2> "$OUT/run$1.time"
}
transcription() {
    /usr/bin/time -v "$QS" transcribe "$AUDIO" --language es --threads "$THREADS" --format json \
        -o "$OUT/asr" > "$OUT/asr$1.log" 2> "$OUT/asr$1.time"
}
for pair in $(seq 1 "$PAIRS"); do
    suffix=$([ "$pair" = 1 ] || echo "-$pair")
    if [ $((pair % 2)) = 1 ]; then whole_job "$suffix"; transcription "$suffix"
    else transcription "$suffix"; whole_job "$suffix"; fi
done
/usr/bin/time -v "$FW_PYTHON" scripts/bench_faster_whisper.py "$CT2" es "$THREADS" 1 "$AUDIO" \
    > "$OUT/fw.jsonl" 2> "$OUT/fw.time"

python3 - "$OUT" "$MINUTES" "$THREADS" "$PAIRS" <<'PY'
import json, re, sys, pathlib
out, minutes, threads, pairs = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])

def wall_s(p):
    m = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", p.read_text())
    return int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
def peak_mb(p):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.read_text()).group(1)) / 1024

log = (out / "run.log").read_text()
audio_s = float(re.search(r": ([\d.]+)s of audio", log).group(1))
stages = dict((k, float(v)) for k, v in re.findall(r"(\w+) ([\d.]+)s", log.split("stage times:")[1].splitlines()[0]))
themes = re.search(r"stage times: themes ([\d.]+)s", log)
if themes:
    stages["themes"] = float(themes.group(1))
total, asr_alone = wall_s(out / "run.time"), wall_s(out / "asr.time")
fw = [json.loads(l) for l in (out / "fw.jsonl").read_text().splitlines()]
fw_transcribe = next(r for r in fw if r.get("summary"))["wall_s"]
fw_wall = wall_s(out / "fw.time")

print(f"{audio_s / 60:.1f} min of Spanish audio, base model, {threads} threads")
print("stage times (qualscribe run):")
for k, v in stages.items():
    print(f"  {k:9} {v:8.1f} s  {100 * v / total:5.1f} %")
print(f"  {'other':9} {total - sum(stages.values()):8.1f} s  (model loading, process start)")
print(f"total {total:.1f} s = {total / 60:.2f} min; {audio_s / total:.1f}x realtime; peak RSS {peak_mb(out / 'run.time'):.0f} MB")
print(f"transcription alone (qualscribe transcribe): {asr_alone:.1f} s, peak RSS {peak_mb(out / 'asr.time'):.0f} MB")
print(f"faster-whisper alone (int8, same weights): {fw_transcribe:.1f} s transcribing, {fw_wall:.1f} s with start-up, peak RSS {peak_mb(out / 'fw.time'):.0f} MB")
print(f"ratio total / transcription alone: {total / asr_alone:.3f}  (target <= 1.15)")
# The same question inside the one `run`, spared the drift between the two processes (Whisper
# 332 s alone vs 389 s in `run` on identical work) but not the drift within it (1.126 and 1.178
# on one build: Whisper slowed by a quarter during one `run`, the speaker stage barely).
added = stages.get("speakers", 0.0) + stages.get("themes", 0.0)
print(f"ratio total / (total - speakers - themes), inside run: {total / (total - added):.3f}")
for pair in range(2, pairs + 1):
    first = "run" if pair % 2 else "transcribe"
    r, a = wall_s(out / f"run-{pair}.time"), wall_s(out / f"asr-{pair}.time")
    print(f"pair {pair} ({first} first): run {r:.1f} s / transcribe {a:.1f} s = {r / a:.3f}")
print(f"ratio total / faster-whisper transcription: {total / fw_transcribe:.3f}  (target < 1)")
print(f"1 h projected: {total / audio_s * 3600 / 60:.1f} min  (target <= 10)")
PY

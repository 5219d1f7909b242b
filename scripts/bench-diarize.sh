#!/usr/bin/env bash
# Benchmark (not a test): diarization error rate on the corpus and the time diarization adds
# to transcription.
#   usage: scripts/bench-diarize.sh [THREADS=2]
# DER uses the pyannote.metrics definitions (`qualscribe eval der`), collar 0.25 (total width)
# and 0, overlap scored. The time ratio compares `run --no-themes` with and without
# `--no-diarize` on the same files (both include decoding, VAD and Whisper).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
THREADS="${1:-2}"
build_release
"$QS" models fetch --model base --model tiny.en --model speaker --model segmentation >/dev/null
C=../shared/corpus
OUT="$QUALSCRIBE_CACHE/bench-diarize"; rm -rf "$OUT"; mkdir -p "$OUT"

timed() {  # $1 label, rest: command; prints wall seconds
    local t0 t1; t0=$(date +%s.%N); "${@:2}" >/dev/null 2>&1; t1=$(date +%s.%N)
    echo "$1 $(python3 -c "print(round($t1 - $t0, 2))")"
}

score() {  # $1 name $2 reference rttm $3 hypothesis folder $4 optional uem
    cat "$3"/*.rttm > "$OUT/$1.hyp.rttm"
    for collar in 0.25 0; do
        local der
        der=$("$QS" eval der --ref "$2" --hyp "$OUT/$1.hyp.rttm" --collar "$collar" ${4:+--uem "$4"} | awk '/^TOTAL/ {print $6}')
        printf '%-22s collar %-5s DER %6s %%\n' "$1" "$collar" "$der"
    done
}

# Synthetic Spanish sets (base) and the real English sample (tiny.en).
common=(--threads "$THREADS" --no-themes --format json)
"$QS" run "${common[@]}" --model base --language es -o "$OUT/focus" $C/grupo_focal_reparto/grupo_focal_01.wav >/dev/null 2>&1
"$QS" run "${common[@]}" --model base --language es -o "$OUT/interviews" $C/entrevistas_apc/*.wav >/dev/null 2>&1
"$QS" run "${common[@]}" --model tiny.en --language en -o "$OUT/sample" $C/pyannote_sample/sample.wav >/dev/null 2>&1
"$QS" run "${common[@]}" --model tiny.en --language en -o "$OUT/ami" $C/ami_clips/{dev,trn,tst}*.wav >/dev/null 2>&1
score focus_group $C/grupo_focal_reparto/grupo_focal_01.rttm "$OUT/focus"
cat $C/entrevistas_apc/*.rttm > "$OUT/interviews.ref.rttm"
score interviews "$OUT/interviews.ref.rttm" "$OUT/interviews"
score pyannote_sample $C/pyannote_sample/sample.rttm "$OUT/sample"
score ami_14_clips $C/ami_clips/reference.rttm "$OUT/ami" $C/ami_clips/reference.uem
# The clustering defaults were chosen on the first half (examples/diarize_sweep.rs): only the
# second half's number is a measurement.
mkdir -p "$OUT/ami_tune" "$OUT/ami_heldout"
for u in dev00 trn00 trn02 trn04 trn06 trn08 tst00; do cp "$OUT/ami/$u.rttm" "$OUT/ami_tune/"; done
for u in dev01 trn01 trn03 trn05 trn07 trn09 tst01; do cp "$OUT/ami/$u.rttm" "$OUT/ami_heldout/"; done
grep -E ' (dev00|trn00|trn02|trn04|trn06|trn08|tst00) ' $C/ami_clips/reference.rttm > "$OUT/ami_tune.ref.rttm"
grep -E ' (dev01|trn01|trn03|trn05|trn07|trn09|tst01) ' $C/ami_clips/reference.rttm > "$OUT/ami_heldout.ref.rttm"
score ami_tune_half "$OUT/ami_tune.ref.rttm" "$OUT/ami_tune" $C/ami_clips/reference.uem
score ami_heldout_half "$OUT/ami_heldout.ref.rttm" "$OUT/ami_heldout" $C/ami_clips/reference.uem

# Real voices mixed into meetings (scripts/make-voice-mix.py: Debian's asterisk prompt voices,
# turns with gaps, overlaps, levels, reverberation, noise; built once into the cache). Nothing
# was tuned on them. tiny.en transcribes (the voices speak en/fr/it/ru; only speakers are scored).
MIX="$QUALSCRIBE_CACHE/voice-mix"
[ -f "$MIX/mix6.rttm" ] || python3 scripts/make-voice-mix.py "$MIX" >/dev/null
"$QS" run "${common[@]}" --model tiny.en --language en -o "$OUT/mix" "$MIX"/mix?.wav >/dev/null 2>&1
cat "$MIX"/mix?.rttm > "$OUT/mix.ref.rttm"
score voice_mixes "$OUT/mix.ref.rttm" "$OUT/mix"
for f in "$MIX"/mix?.rttm; do
    u=$(basename "$f" .rttm)
    printf '%-22s speakers true %s found %s\n' "$u" "$(awk '{print $8}' "$f" | sort -u | wc -l)" \
        "$(awk '{print $8}' "$OUT/mix/$u.rttm" | sort -u | wc -l)"
done

# The segmentation recipe (opt-in, --speaker-method segmentation), scored with the example sweep
# (segmentation + CAM++ on the audio, no transcription). Its threshold (with mixes 1–3) and min_alone_ms were
# chosen on the AMI tuning half, its margin on the focus group: the held-out half is the claim.
cargo build --release --locked --quiet --example diarize_sweep
SW="$CARGO_TARGET_DIR/release/examples/diarize_sweep --segmentation --thresholds 0.45 --margins 0.25"
$SW --ref "$OUT/ami_heldout.ref.rttm" --uem $C/ami_clips/reference.uem \
    $(for u in dev01 trn01 trn03 trn05 trn07 trn09 tst01; do echo $C/ami_clips/$u.wav; done) | sed 's/^/ami_heldout_half /'
$SW --ref $C/pyannote_sample/sample.rttm $C/pyannote_sample/sample.wav | sed 's/^/pyannote_sample /'
$SW --ref $C/grupo_focal_reparto/grupo_focal_01.rttm $C/grupo_focal_reparto/grupo_focal_01.wav | sed 's/^/focus_group /'

# Cost of the two recipes on the same recording, back to back (CPU seconds, which the other
# load on a shared machine disturbs less than wall time): decode + VAD + embedding (+
# segmentation) + clustering, no transcription. The sweep prints the work done (CAM++ windows;
# segmentation chunks, local-speaker and piece embeddings).
SWEEP="$CARGO_TARGET_DIR/release/examples/diarize_sweep"
FG=$C/grupo_focal_reparto/grupo_focal_01
for recipe in windows segmentation; do
    flag=(); [ "$recipe" = segmentation ] && flag=(--segmentation)
    /usr/bin/time -f "recipe_cost $recipe: CPU %U s user + %S s sys, wall %e s" \
        "$SWEEP" "${flag[@]}" --ref "$FG.rttm" "$FG.wav" 2>&1 | grep -E 'recipe_cost|embedd'
done

# Time and memory of the speaker stage, on the focus group and the interviews (Spanish, base):
# `run` reports per-stage seconds; the speaker stage (embedding + clustering) is compared with
# transcription (read + decode + VAD + Whisper) of the same run, and peak memory comes from
# /usr/bin/time -v. Target: speakers add <= 25 % to transcription on 2 cores.
FILES=($C/grupo_focal_reparto/grupo_focal_01.wav $C/entrevistas_apc/*.wav)
/usr/bin/time -v "$QS" run "${common[@]}" --model base --language es -o "$OUT/t2" "${FILES[@]}" \
    > "$OUT/timed.log" 2> "$OUT/time-v.log"
audio_s=$(python3 -c "
import sys, wave
print(sum(wave.open(f).getnframes() / wave.open(f).getframerate() for f in sys.argv[1:]))" "${FILES[@]}")
python3 - "$OUT/timed.log" "$OUT/time-v.log" "$audio_s" <<'PY'
import re, sys
log, timev, audio_s = open(sys.argv[1]).read(), open(sys.argv[2]).read(), float(sys.argv[3])
total = {}
for line in re.findall(r"stage times: (.*)", log + timev):
    for k, v in re.findall(r"(\w+) ([\d.]+)s", line):
        total[k] = total.get(k, 0.0) + float(v)
transcription = sum(total.get(k, 0.0) for k in ("read", "decode", "vad", "asr"))
speakers = total.get("speakers", 0.0)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timev).group(1)) / 1024
print(f"speaker stage {speakers:.1f} s, transcription {transcription:.1f} s "
      f"(audio {audio_s:.0f} s): speakers add {100 * speakers / transcription:.1f} % "
      f"({3600 * speakers / audio_s:.0f} s per hour of audio); peak RSS {rss:.0f} MB")
PY

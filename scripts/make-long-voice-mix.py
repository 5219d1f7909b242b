#!/usr/bin/env python3
"""Long real-voice recordings (focus-group length, 7 speakers) with a reference RTTM.

The short mixes of `scripts/make-voice-mix.py` (1-2.5 min, 3-5 voices) never show what happens
as a recording grows; this builds two of ~15 and ~19 min from the same kind of material: seven
real, professionally recorded voices from Debian's asterisk prompt packages, each package one
person (its credits or folder name say who):

    allison  asterisk-core-sounds-en-wav     en_US_f_Allison
    june     asterisk-core-sounds-fr-wav     fr_CA_f_June
    carlo    asterisk-core-sounds-it-wav     it_IT_m_Carlo
    irina    asterisk-core-sounds-ru-wav     ru_RU_f_IvrvoiceRU
    menardi  asterisk-prompt-it-menardi-wav  it_IT_f_Menardi
    july     asterisk-prompt-es-co           "con la voz de July E. Jimenez" (LEEME), GSM 06.10
    armelle  asterisk-prompt-fr-armelle      "Voice actor: Armelle Desjardins" (copyright), GSM

The GSM prompts are decoded with libsndfile (ctypes; Debian's libsndfile1). All are 8 kHz.

Turn-taking is meant to look like a focus group, not a prompt carousel: one moderator with about a
quarter of the turns, participants with unequal shares (one says little), turns of 2-30 s
(lognormal, median ~5 s, built from consecutive prompts of one voice), short interjections
(a single 0.3-1.2 s prompt of another voice inside a turn: backchannel, overlapped), some turn
starts before the previous turn ends, gaps of 0.2-1.5 s and now and then a 2-4 s pause. Level per
speaker (-12..0 dB) and per turn (+-2 dB), one synthetic room per speaker, reddish noise at
15-25 dB SNR (the helpers of make-voice-mix.py). long1 is for tuning, long2 is held out; their
prompts are disjoint (each voice's prompts alternate between them).

    usage: scripts/make-long-voice-mix.py [OUT_DIR]   (default ~/.cache/qualscribe/voice-mix-long)
           scripts/make-long-voice-mix.py [OUT_DIR] --minutes 60,90 [--quiet-s 30]
           scripts/make-long-voice-mix.py [OUT_DIR] --interviews

Writes OUT_DIR/longN.wav (16 kHz mono 16-bit), OUT_DIR/longN.rttm, OUT_DIR/long.json. The
packages are fetched with `apt-get download` into OUT_DIR/debs (or reused from the short mixes'
cache). Deterministic (fixed seed). Nothing here goes into the repository.

`--interviews` builds one-to-one interviews instead (two voices taking turns, with the same turn
lengths, backchannel, overlaps and pauses as above): int20t (June interviews Allison, 20 min) and int40t (Carlo, Menardi, 40
min) from long1's half of the prompts, for tuning; int30h (July, Irina, 30 min) and int45h
(Armelle, June, 45 min) from long2's half, held out; written with OUT_DIR/interviews.json.
Prompts are reused when a voice's half runs out, as with `--minutes`.

`--minutes` builds, instead of long1/long2, a pair per length M: longMt (tuning; moderator June,
prompts of long1's half) and longMh (held out; moderator Carlo, long2's half), written with
OUT_DIR/longM.json. Each has one quiet participant with about QUIET_S seconds of speech in all
(default 30; Allison in longMt, Irina in longMh): a few 2-6 s turns spread evenly over the
recording and no backchannel, i.e. well under 1 % of an hour's speech but a voice of its own.
A voice's half holds less than an hour's share of prompts (July's GSM prompts ~5 min), so when
it runs out it is reshuffled and reused (the same prompt recurs within a recording, never across
the halves). `--minutes 60,90` gives long60t/long60h (~3330 s of speech, quiet 32 s / 25 s) and
long90t/long90h (~4980 s, quiet 29 s / 33 s).
"""
import ctypes
import glob
import importlib.util
import json
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("voice_mix", os.path.join(HERE, "make-voice-mix.py"))
vm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vm)

SR = vm.SR
SEED = 20261207
# voice -> (Debian package, folder under usr/share/asterisk/sounds or None for the whole tree)
VOICES = {
    **vm.VOICES,
    "july": ("asterisk-prompt-es-co", None),
    "armelle": ("asterisk-prompt-fr-armelle", None),
}
# (name, moderator, seconds). Both use all seven voices with different roles.
RECORDINGS = [("long1", "june", 900), ("long2", "carlo", 1140)]
# `--minutes`: per half, (name suffix, moderator, quiet participant).
LONG_HALVES = [("t", "june", "allison"), ("h", "carlo", "irina")]
# `--interviews`: one-to-one interviews, (name, interviewer, interviewee, seconds); the "t" pair
# takes long1's half of the prompts (tuning), the "h" pair long2's (held out).
INTERVIEWS = [("int20t", "june", "allison", 1200), ("int40t", "carlo", "menardi", 2400),
              ("int30h", "july", "irina", 1800), ("int45h", "armelle", "june", 2700)]
# The quiet participant's turns (seconds): short contributions, as a shy participant's are.
QUIET_TURN_S = (2.0, 6.0)


def fetch(out):
    # The short mixes' downloads are reused when present.
    short_debs = os.path.expanduser("~/.cache/qualscribe/voice-mix/debs")
    return vm.fetch_voices(out, VOICES, short_debs)


class _SfInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]


def gsm_reader():
    """Raw GSM 06.10 (8 kHz mono) through libsndfile: SF_FORMAT_RAW | SF_FORMAT_GSM610."""
    sf = ctypes.CDLL("libsndfile.so.1")
    sf.sf_open.restype = ctypes.c_void_p
    sf.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_SfInfo)]
    sf.sf_readf_double.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double), ctypes.c_int64]
    sf.sf_readf_double.restype = ctypes.c_int64
    sf.sf_close.argtypes = [ctypes.c_void_p]

    def read(path):
        info = _SfInfo(0, 8000, 1, 0x040000 | 0x0020, 0, 0)
        handle = sf.sf_open(path.encode(), 0x10, ctypes.byref(info))
        if not handle:
            return None
        buf = np.zeros(max(info.frames, 0))
        n = sf.sf_readf_double(handle, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), len(buf))
        sf.sf_close(handle)
        return buf[:n]

    return read


def upsample(x):
    """Exact band-limited 8 -> 16 kHz (as make-voice-mix.py does)."""
    return np.fft.irfft(np.fft.rfft(x), 2 * len(x)) * 2


def load_voice(root, package, folder, read_gsm):
    """(long prompts >= 1 s, short prompts 0.3-1.2 s) of one voice, each file once."""
    base = os.path.join(root, package, "usr/share/asterisk/sounds")
    if folder:
        base = os.path.join(base, folder)
    files = sorted({os.path.realpath(f) for f in glob.glob(os.path.join(base, "**", "*.*"), recursive=True)})
    clips = []
    for f in files:
        if f.endswith(".wav"):
            x = vm.read_prompt(f)
        elif f.endswith(".gsm"):
            raw = read_gsm(f)
            x = vm.trim(upsample(raw)) if raw is not None and len(raw) >= 2400 else None
        else:
            continue
        if x is not None:
            clips.append(x)
    long = [c for c in clips if len(c) >= 1.0 * SR]
    short = [c for c in clips if 0.3 * SR <= len(c) <= 1.2 * SR]
    return long, short


def speaking_shares(voices, moderator, rng):
    """Turn probabilities: the moderator ~25 %, the others unequal, the last one quiet."""
    others = [v for v in voices if v != moderator]
    weights = rng.dirichlet(np.full(len(others), 2.0))
    weights[-1] = min(weights[-1], 0.04)  # one participant who barely talks
    weights = weights / weights.sum() * 0.75
    return {moderator: 0.25, **dict(zip(others, weights))}


def turn_length(rng):
    return float(np.clip(rng.lognormal(np.log(5.0), 0.8), 2.0, 30.0))


def quiet_schedule(seconds, quiet_s, rng):
    """(start time s, turn length s) of the quiet participant's turns: evenly spread, jittered."""
    lengths = []
    while sum(lengths) < quiet_s:
        lengths.append(min(rng.uniform(*QUIET_TURN_S), quiet_s - sum(lengths) + 0.5))
    slot = seconds / len(lengths)
    return [(slot * (i + rng.uniform(0.2, 0.8)), n) for i, n in enumerate(lengths)]


def build(voices, moderator, seconds, prompts, shorts, rng, quiet=None, refill=None):
    """One recording. `quiet`: (voice, seconds) of a participant who only speaks in a few
    scheduled turns; `refill`: per voice (long, short) prompts to reuse, reshuffled, when a
    voice runs out (None: the recording ends there)."""
    level = {v: rng.uniform(-12, 0) for v in voices}
    rooms = {v: vm.room_response(rng) for v in voices}
    quiet_voice = quiet[0] if quiet else None
    share = speaking_shares([v for v in voices if v != quiet_voice], moderator, rng)
    plan = quiet_schedule(seconds, quiet[1], rng) if quiet else []
    total = int((seconds + 40) * SR)
    track = np.zeros(total)
    segments = []  # (voice, start s, end s)

    def place(x, voice, start):
        gain = 10 ** ((level[voice] + rng.uniform(-2, 2)) / 20)
        wet = vm.convolve(x / (np.sqrt(np.mean(x**2)) + 1e-9) * 0.05 * gain, rooms[voice])
        if start + len(wet) > total:
            return False
        track[start:start + len(wet)] += wet
        return True

    def next_prompt(pool, voice, k):
        if not pool[voice] and refill:
            pool[voice] = [refill[voice][k][i] for i in rng.permutation(len(refill[voice][k]))]
        return pool[voice].pop() if pool[voice] else None

    cursor, previous = int(0.5 * SR), None
    while cursor < seconds * SR:
        if plan and cursor >= plan[0][0] * SR and previous != quiet_voice:
            voice, target = quiet_voice, plan.pop(0)[1] * SR
        else:
            choices = [v for v in voices if v not in (previous, quiet_voice) and (prompts[v] or refill)]
            if not choices:
                break
            p = np.array([share[v] for v in choices])
            voice = choices[rng.choice(len(choices), p=p / p.sum())]
            target = turn_length(rng) * SR
        parts, turn_segments, offset = [], [], 0
        while offset < target:
            x = next_prompt(prompts, voice, 0)
            if x is None:
                break
            if voice == quiet_voice and offset and offset + len(x) > target:
                break  # the quiet participant's total stays near its budget
            turn_segments.append((offset, offset + len(x)))
            parts.extend([x, np.zeros(int(rng.uniform(0.15, 0.35) * SR))])
            offset += len(x) + len(parts[-1])
        if not parts:
            break
        turn = np.concatenate(parts[:-1])
        start = cursor
        if not place(turn, voice, start):
            break
        segments.extend((voice, (start + a) / SR, (start + b) / SR) for a, b in turn_segments)
        end = start + len(turn)
        # Backchannel: another voice says one short prompt inside a turn longer than 4 s.
        if len(turn) > 4 * SR and rng.random() < 0.5:
            listeners = [v for v in voices if v not in (voice, quiet_voice) and (shorts[v] or refill)]
            if listeners:
                other = listeners[rng.integers(len(listeners))]
                x = next_prompt(shorts, other, 1)
                at = start + int(rng.uniform(1.0, len(turn) / SR - 2.0) * SR)
                if place(x, other, at):
                    segments.append((other, at / SR, (at + len(x)) / SR))
        r = rng.random()
        if r < 0.22:  # the next speaker starts before this one ends
            cursor = end - int(rng.uniform(0.3, 1.5) * SR)
        elif r < 0.30:  # a pause
            cursor = end + int(rng.uniform(2.0, 4.0) * SR)
        else:
            cursor = end + int(rng.uniform(0.2, 1.5) * SR)
        previous = voice
    length = min(int(max(b for _, _, b in segments) * SR) + SR, total)
    track = track[:length]
    track, snr_db = vm.add_noise(track, rng, (15, 25))
    return track, vm.merge(segments), snr_db


def overlap_seconds(turns):
    """Seconds where two or more voices talk (frame count at 10 ms)."""
    end = max(b for _, _, b in turns)
    count = np.zeros(int(end * 100) + 1, dtype=np.int32)
    for _, a, b in turns:
        count[int(a * 100):int(b * 100)] += 1
    return float(np.sum(count >= 2)) / 100, float(np.sum(count >= 1)) / 100


def parse_args(argv):
    """(out dir, minutes or None, quiet participant's seconds, interviews?)."""
    out, minutes, quiet_s = os.path.expanduser("~/.cache/qualscribe/voice-mix-long"), None, 30.0
    interviews = False
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--minutes":
            minutes = [float(m) for m in args.pop(0).split(",")]
        elif a == "--quiet-s":
            quiet_s = float(args.pop(0))
        elif a == "--interviews":
            interviews = True
        else:
            out = a
    return out, minutes, quiet_s, interviews


def recording_plan(minutes, quiet_s, interviews=False):
    """(name, moderator, seconds, half, quiet, voices or None for all) of each recording."""
    if interviews:
        return [(name, a, seconds, 0 if name.endswith("t") else 1, None, [a, b])
                for name, a, b, seconds in INTERVIEWS]
    if minutes is None:
        return [(name, moderator, seconds, k, None, None)
                for k, (name, moderator, seconds) in enumerate(RECORDINGS)]
    return [(f"long{m:g}{suffix}", moderator, int(m * 60), k, (quiet, quiet_s), None)
            for m in minutes for k, (suffix, moderator, quiet) in enumerate(LONG_HALVES)]


def write_recording(out, name, track, turns):
    vm.write_wav(os.path.join(out, name + ".wav"), track)
    tmp = os.path.join(out, name + ".rttm.tmp")
    with open(tmp, "w") as f:
        for voice, a, b in turns:
            f.write(f"SPEAKER {name} 1 {a:.3f} {b - a:.3f} <NA> <NA> {voice} <NA> <NA>\n")
    os.replace(tmp, os.path.join(out, name + ".rttm"))


def main():
    out, minutes, quiet_s, interviews = parse_args(sys.argv[1:])
    os.makedirs(out, exist_ok=True)
    root = fetch(out)
    read_gsm = gsm_reader()
    rng = np.random.default_rng(SEED)
    halves = {}
    for voice, (package, folder) in VOICES.items():
        long, short = load_voice(root, package, folder, read_gsm)
        long = [long[i] for i in rng.permutation(len(long))]
        short = [short[i] for i in rng.permutation(len(short))]
        for k in range(len(RECORDINGS)):
            halves[(voice, k)] = (long[k::len(RECORDINGS)], short[k::len(RECORDINGS)])
    manifests = {}
    for name, moderator, seconds, k, quiet, pair in recording_plan(minutes, quiet_s, interviews):
        voices = pair or list(VOICES)
        prompts = {v: list(halves[(v, k)][0]) for v in voices}
        shorts = {v: list(halves[(v, k)][1]) for v in voices}
        refill = None
        if quiet or pair:  # its own generator, so long1/long2 stay as they were
            rng = np.random.default_rng([SEED, seconds, k])
            refill = {v: halves[(v, k)] for v in voices}
        track, turns, snr = build(voices, moderator, seconds, prompts, shorts, rng, quiet, refill)
        write_recording(out, name, track, turns)
        overlap, speech = overlap_seconds(turns)
        per_voice = {v: round(sum(b - a for w, a, b in turns if w == v), 1) for v in voices}
        stem = "interviews" if pair else "long" if quiet is None else name.rstrip("th")
        manifest = manifests.setdefault(stem, [])
        manifest.append({"name": name, "voices": voices, "moderator": moderator,
                         "seconds": round(len(track) / SR, 1), "speech_s": round(speech, 1),
                         "overlap_s": round(overlap, 1), "turns": len(turns),
                         "speech_s_per_voice": per_voice,
                         "snr_db": round(snr, 1), "half": "tune" if k == 0 else "report"})
        if quiet:
            manifest[-1]["quiet"] = quiet[0]
        print(f"{name}: {len(track) / SR:.0f} s, {len(voices)} voices, {len(turns)} turns, "
              f"speech {speech:.0f} s, overlap {overlap:.1f} s ({100 * overlap / speech:.1f} %), SNR {snr:.0f} dB, "
              + ", ".join(f"{v} {s}" for v, s in per_voice.items()), flush=True)
    for stem, manifest in manifests.items():
        tmp = os.path.join(out, stem + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(tmp, os.path.join(out, stem + ".json"))


if __name__ == "__main__":
    main()

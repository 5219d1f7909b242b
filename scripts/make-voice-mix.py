#!/usr/bin/env python3
"""Real-voice multi-speaker test recordings with a reference RTTM, rebuilt from Debian packages.

Each of Debian's asterisk prompt packages is one real, professionally recorded voice (the folder
inside names it: en_US_f_Allison, fr_CA_f_June, it_IT_m_Carlo, ru_RU_f_IvrvoiceRU,
it_IT_f_Menardi). The Spanish core sounds are es_MX_f_Allison, the same woman as the English
ones, so only the English package stands for her. Prompts are 8 kHz telephone recordings.

Each mix takes turns of 3-5 of these voices (a turn: 1-3 prompts of one voice), with gaps, some
overlapping turn starts, a level per speaker and per turn, mild synthetic reverberation (a
different room response per speaker) and background noise. A prompt is used in one mix only, so
a voice enrolled from one mix is recognised in another from different speech.

    usage: scripts/make-voice-mix.py [OUT_DIR]   (default ~/.cache/qualscribe/voice-mix)

Writes OUT_DIR/mixN.wav (16 kHz mono 16-bit), OUT_DIR/mixN.rttm, OUT_DIR/mixes.json (voices per
mix and their RTTM names). Deterministic (fixed seed); the packages are fetched with
`apt-get download` into OUT_DIR/debs on first use. Nothing here goes into the repository.
Needs python3 + numpy only (the 8 -> 16 kHz step is an exact band-limited FFT upsampling).
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np

SR = 16_000
SEED = 20261206
# voice name -> (Debian package, folder under usr/share/asterisk/sounds)
VOICES = {
    "allison": ("asterisk-core-sounds-en-wav", "en_US_f_Allison"),
    "june": ("asterisk-core-sounds-fr-wav", "fr_CA_f_June"),
    "carlo": ("asterisk-core-sounds-it-wav", "it_IT_m_Carlo"),
    "irina": ("asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU"),
    "menardi": ("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi"),
}
# (voices, target seconds). Every voice occurs in at least three mixes, both in the first half
# (mix1-3, for tuning) and in the second (mix4-6, for reporting) where it can.
MIXES = [
    (["allison", "june", "carlo"], 75),
    (["allison", "irina", "menardi", "carlo"], 110),
    (["june", "irina", "menardi", "allison", "carlo"], 150),
    (["june", "irina", "carlo"], 80),
    (["allison", "menardi", "june", "irina"], 120),
    (["carlo", "menardi", "allison", "june", "irina"], 150),
]


def fetch_voices(out, voices=VOICES, cached_debs=None):
    """Downloads and unpacks each voice's package under OUT (x/<package>), once; a .deb already
    in `cached_debs` is copied instead of downloaded."""
    debs, root = os.path.join(out, "debs"), os.path.join(out, "x")
    os.makedirs(debs, exist_ok=True)
    for package, _ in voices.values():
        if not glob.glob(os.path.join(debs, package + "_*.deb")):
            cached = glob.glob(os.path.join(cached_debs, package + "_*.deb")) if cached_debs else []
            if cached:
                shutil.copy(cached[0], debs)
            else:
                subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        target = os.path.join(root, package)
        if not os.path.isdir(target):
            deb = glob.glob(os.path.join(debs, package + "_*.deb"))[0]
            os.makedirs(target)
            subprocess.run(["dpkg-deb", "-x", deb, target], check=True)
    return root


def read_prompt(path):
    with wave.open(path) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            return None
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    if len(x) < rate // 2:
        return None
    if rate == 8000:  # exact band-limited upsampling to 16 kHz
        spectrum = np.fft.rfft(x)
        x = np.fft.irfft(spectrum, 2 * len(x)) * 2
    elif rate != SR:
        return None
    return trim(x)


def trim(x, frame=320):
    """Cuts leading and trailing silence (frames 35 dB below the loudest)."""
    n = len(x) // frame
    if n == 0:
        return None
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12
    voiced = np.nonzero(10 * np.log10(energy / energy.max()) > -35)[0]
    if len(voiced) == 0:
        return None
    return x[voiced[0] * frame:(voiced[-1] + 1) * frame]


def room_response(rng):
    """A mild synthetic room: direct path plus exponentially decaying noise (RT60 0.2-0.4 s)."""
    rt60 = rng.uniform(0.2, 0.4)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 10 ** (rng.uniform(-14, -10) / 20)
    tail[: int(0.003 * SR)] = 0
    tail[0] = 1.0
    return tail


def convolve(x, h):
    size = 1 << int(np.ceil(np.log2(len(x) + len(h))))
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x) + len(h) - 1]


def build_mix(name, voices, seconds, prompts, rng):
    level = {v: rng.uniform(-9, 0) for v in voices}
    rooms = {v: room_response(rng) for v in voices}
    total = int((seconds + 5) * SR)
    track = np.zeros(total)
    segments = []  # (voice, start s, end s)
    cursor, previous = 0.5 * SR, None
    while cursor < seconds * SR:
        choices = [v for v in voices if v != previous and prompts[v]]
        if not choices:
            break
        voice = choices[rng.integers(len(choices))]
        parts, turn_segments, offset = [], [], 0
        for _ in range(rng.integers(1, 4)):
            if not prompts[voice]:
                break
            x = prompts[voice].pop()
            turn_segments.append((offset, offset + len(x)))
            parts.extend([x, np.zeros(int(rng.uniform(0.15, 0.35) * SR))])
            offset += len(x) + len(parts[-1])
        turn = np.concatenate(parts[:-1])
        gain = 10 ** ((level[voice] + rng.uniform(-2, 2)) / 20)
        wet = convolve(turn / (np.sqrt(np.mean(turn**2)) + 1e-9) * 0.05 * gain, rooms[voice])
        start = int(cursor)
        if start + len(wet) > total:
            break
        track[start:start + len(wet)] += wet
        for a, b in turn_segments:
            segments.append((voice, (start + a) / SR, (start + b) / SR))
        end = start + len(turn)
        # Mostly a gap of 0.2-1.2 s; one turn in six starts 0.3-1.0 s before the last one ends.
        if rng.random() < 1 / 6:
            cursor = end - rng.uniform(0.3, 1.0) * SR
        else:
            cursor = end + rng.uniform(0.2, 1.2) * SR
        previous = voice
    length = min(int(max(b for _, _, b in segments) * SR) + SR, total)
    track = track[:length]
    track, snr_db = add_noise(track, rng, (18, 25))
    return track, merge(segments), snr_db


def add_noise(track, rng, snr_range):
    """`track` with background noise at an SNR drawn from `snr_range` (dB, against the speech's
    RMS), scaled to a 0.5 peak; returns (track, snr_db). The other mix scripts use it too, so
    every recording's noise is made the same way (and the same seed gives the same file)."""
    length = len(track)
    speech_rms = np.sqrt(np.mean(track[track != 0] ** 2))
    noise = np.cumsum(rng.standard_normal(length)) * 0.02 + rng.standard_normal(length)  # reddish
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")  # no DC drift
    snr_db = rng.uniform(*snr_range)
    track += noise / np.sqrt(np.mean(noise**2)) * speech_rms * 10 ** (-snr_db / 20)
    track *= 0.5 / max(np.max(np.abs(track)), 1e-9)
    return track, snr_db


def merge(segments, gap=0.5):
    """The reference turns: one voice's prompts closer than `gap` s are one turn."""
    merged = []
    for voice, a, b in sorted(segments, key=lambda s: (s[0], s[1])):
        if merged and merged[-1][0] == voice and a - merged[-1][2] < gap:
            merged[-1][2] = max(merged[-1][2], b)
        else:
            merged.append([voice, a, b])
    return sorted(merged, key=lambda s: s[1])


def write_wav(path, x):
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    os.replace(tmp, path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/qualscribe/voice-mix")
    os.makedirs(out, exist_ok=True)
    root = fetch_voices(out)
    rng = np.random.default_rng(SEED)
    prompts = {}
    for voice, (package, folder) in VOICES.items():
        files = sorted(glob.glob(os.path.join(root, package, "usr/share/asterisk/sounds", folder, "**", "*.wav"), recursive=True))
        clips = [c for c in (read_prompt(f) for f in files) if c is not None and len(c) >= 1.0 * SR]
        order = rng.permutation(len(clips))
        prompts[voice] = [clips[i] for i in order]
    # Split each voice's prompts into one disjoint share per mix it is in.
    uses = {v: [i for i, (vs, _) in enumerate(MIXES) if v in vs] for v in VOICES}
    shares = {(v, i): [] for v in VOICES for i in uses[v]}
    for v in VOICES:
        for k, clip in enumerate(prompts[v]):
            shares[(v, uses[v][k % len(uses[v])])].append(clip)
    manifest = []
    for i, (voices, seconds) in enumerate(MIXES):
        name = f"mix{i + 1}"
        track, turns, snr = build_mix(name, voices, seconds, {v: shares[(v, i)] for v in voices}, rng)
        write_wav(os.path.join(out, name + ".wav"), track)
        with open(os.path.join(out, name + ".rttm"), "w") as f:
            for voice, a, b in turns:
                f.write(f"SPEAKER {name} 1 {a:.3f} {b - a:.3f} <NA> <NA> {voice} <NA> <NA>\n")
        overlap = sum(
            max(0.0, min(b1, b2) - max(a1, a2))
            for j, (v1, a1, b1) in enumerate(turns)
            for (v2, a2, b2) in turns[j + 1:]
            if v1 != v2
        )
        manifest.append({"name": name, "voices": voices, "seconds": round(len(track) / SR, 1),
                         "speech_s": {v: round(sum(b - a for w, a, b in turns if w == v), 1) for v in voices},
                         "overlap_s": round(overlap, 1), "snr_db": round(snr, 1),
                         "half": "tune" if i < 3 else "report"})
        print(f"{name}: {len(track) / SR:.0f} s, {len(voices)} voices, {len(turns)} turns, overlap {overlap:.1f} s, SNR {snr:.0f} dB")
    with open(os.path.join(out, "mixes.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()

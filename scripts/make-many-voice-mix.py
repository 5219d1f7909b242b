#!/usr/bin/env python3
"""Real-voice recordings with 8, 10 and 12 speakers (focus-group size) and a reference RTTM.

The other real-voice sets stop at 7 voices (Debian's asterisk prompt packages). Focus groups have
5-10 people, so this mixes four kinds of real, recorded people (no synthetic voice):

  ami      the corpus's AMI meeting clips (/work/shared/corpus/ami_clips): stretches where the
           reference RTTM has exactly one person talking (>= 0.8 s), cut out with their room and
           microphone as recorded. RTTM ids are global AMI participant ids (MEE009 ...), so
           people are told apart across meetings. Only people with >= MIN_AMI_S of such speech.
  fleurs   the corpus's FLEURS clips (one reader per clip; readers may repeat within a language,
           so at most one clip per language per recording), cut at pauses into 2-7 s pieces.
  klettres Debian's klettres-data: letters and syllables read by one volunteer per language
           (one folder per voice; 44.1 kHz Ogg), turns of several syllables.
  asterisk the seven voices of scripts/make-long-voice-mix.py (telephone prompts, 8 kHz),
           each half with its own prompts (the long1/long2 split).

Halves (disjoint material): the tuning half takes the AMI tuning clips (dev00 trn00 trn02 trn04
trn06 trn08 tst00), FLEURS clips 000-004, klettres voices KLETTRES["t"] and long1's prompts;
the held-out half takes dev01 trn01 trn03 trn05 trn07 trn09 tst01, FLEURS 005-009, other
klettres languages (other people) and long2's prompts. An AMI person or an asterisk voice may be
in both halves, always with different speech.

Per half: many8, many10, many12 (8/10/12 speakers; the same half's material reused between
them). Turns of one speaker (pieces joined with 0.15-0.35 s pauses, 1.5-12 s, lognormal around
4 s), the next speaker chosen at random (not the same one, weighted by speech left), gaps of
0.2-1.2 s, one turn in six starting 0.3-1.0 s before the last ends; each speaker's speech is
spread over the whole recording. Level per speaker (-12..0 dB) and per turn (+-2 dB), a synthetic
room per dry speaker (not for AMI, which has its own), reddish noise at 18-25 dB SNR (the helpers
of make-voice-mix.py). Caveat: the four sources differ in channel (far-field meeting room, close
microphone, studio, telephone), which helps tell people from different sources apart; people
from the same source are the hard part.

    usage: scripts/make-many-voice-mix.py [OUT_DIR]   (default ~/.cache/qualscribe/voice-mix-many)

Writes OUT_DIR/many{8,10,12}{t,h}.wav (16 kHz mono 16-bit), .rttm, and many.json (speakers,
sources, seconds of speech per speaker). Needs numpy and soundfile (FLEURS FLAC, klettres Ogg);
the asterisk and klettres packages are fetched with `apt-get download` (asterisk ones reused from
the long mixes' cache). Deterministic (fixed seed). Nothing here goes into the repository.
"""
import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vm = _load("voice_mix", "make-voice-mix.py")
lvm = _load("long_voice_mix", "make-long-voice-mix.py")
SR = vm.SR
SEED = 20261210
CORPUS = "/work/shared/corpus"
AMI_CLIPS = {"t": ["dev00", "trn00", "trn02", "trn04", "trn06", "trn08", "tst00"],
             "h": ["dev01", "trn01", "trn03", "trn05", "trn07", "trn09", "tst01"]}
MIN_AMI_S = 5.0
FLEURS_IDS = {"t": range(0, 5), "h": range(5, 10)}
FLEURS_LANGS = ["de", "en", "es", "fr", "pt"]
# One klettres folder per voice; different languages per half, so different people.
KLETTRES = {"t": ["de/syllab", "hu/alpha", "nl/syllab", "uk/syllab"],
            "h": ["fr/syllab", "he/alpha", "nds/syllab", "pt_BR/syllab"]}
# speakers per source in each recording: (name, ami, fleurs, klettres, asterisk)
RECORDINGS = [("many8", 3, 2, 1, 2), ("many10", 4, 2, 2, 2), ("many12", 5, 3, 2, 2)]
DRY_VOICE_S = (20.0, 40.0)  # seconds of speech given to each klettres or asterisk voice


def resample(x, rate):
    """Band-limited FFT resampling to 16 kHz (exact for 8 kHz, adequate for 44.1 kHz)."""
    if rate == SR:
        return x
    n = int(round(len(x) * SR / rate))
    spectrum = np.fft.rfft(x)
    keep = min(len(spectrum), n // 2 + 1)
    return np.fft.irfft(spectrum[:keep], n) * (n / len(x))


def read_audio(path):
    x, rate = sf.read(path, dtype="float64", always_2d=True)
    return resample(x.mean(axis=1), rate)


def ami_people(clips):
    """{person: [pieces]} — stretches where only that person speaks, >= 0.8 s."""
    turns = {}
    with open(os.path.join(CORPUS, "ami_clips/reference.rttm")) as f:
        for line in f:
            p = line.split()
            turns.setdefault(p[1], []).append((p[7], float(p[3]), float(p[3]) + float(p[4])))
    people = {}
    for clip in clips:
        audio = read_audio(os.path.join(CORPUS, "ami_clips", clip + ".wav"))
        frames = np.zeros((len(audio) // 160 + 1,), dtype=np.int32)
        for _, a, b in turns.get(clip, []):
            frames[int(a * 100):int(b * 100)] += 1
        for who, a, b in turns.get(clip, []):
            alone = frames[int(a * 100):int(b * 100)] == 1
            for s, e in runs(alone):
                s, e = int(a * 100) + s, int(a * 100) + e
                if e - s >= 80:  # long stretches cut at pauses, so a person speaks in several turns
                    stretch = audio[s * 160:e * 160]
                    cut = pieces_at_pauses(stretch) if e - s > 700 else [stretch]
                    people.setdefault(who, []).extend(cut or [stretch])
    return {p: v for p, v in people.items() if sum(map(len, v)) >= MIN_AMI_S * SR}


def runs(mask):
    """(start, end) index pairs of the True runs of a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def quiet_frames(x, frame=320):
    """20 ms frames that are not speech: under the loudest frame - 30 dB, or within 8 dB of the
    recording's noise floor (FLEURS and AMI have audible background noise)."""
    n = len(x) // frame
    db = 10 * np.log10(np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    return db < max(db.max() - 30, np.percentile(db, 10) + 8)


def trim_noisy(x, frame=320):
    """Cuts leading and trailing non-speech (see quiet_frames)."""
    if x is None or len(x) < frame:
        return None
    voiced = np.nonzero(~quiet_frames(x, frame))[0]
    if len(voiced) == 0:
        return None
    return x[voiced[0] * frame:(voiced[-1] + 1) * frame]


def pieces_at_pauses(x, low=2.0, high=7.0):
    """Cuts a read sentence at its pauses (>= 150 ms, see quiet_frames) into pieces of
    `low`-`high` s; each piece trimmed."""
    frame = 320
    quiet = quiet_frames(x, frame)
    cuts = [(s + e) // 2 * frame for s, e in runs(quiet) if e - s >= 8]
    pieces, start = [], 0
    for c in cuts + [len(x)]:
        if (c - start >= low * SR and len(x) - c >= low * SR) or c == len(x) or c - start >= high * SR:
            piece = trim_noisy(x[start:c])
            if piece is not None and len(piece) >= 0.5 * SR:
                pieces.append(piece)
            start = c
    return pieces


def fleurs_readers(ids):
    """{fleurs-LANG: pieces} — one clip per language (the longest in `ids`)."""
    readers = {}
    for lang in FLEURS_LANGS:
        files = [os.path.join(CORPUS, "fleurs/flac", f"fleurs-{lang}-{i:03d}.flac") for i in ids]
        longest = max(files, key=lambda f: sf.info(f).duration)
        readers[f"fleurs-{lang}"] = pieces_at_pauses(read_audio(longest))
    return readers


def klettres_voices(out, folders):
    debs = os.path.join(out, "debs")
    root = os.path.join(out, "x", "klettres-data")
    os.makedirs(debs, exist_ok=True)
    if not glob.glob(os.path.join(debs, "klettres-data_*.deb")):
        subprocess.run(["apt-get", "download", "klettres-data"], cwd=debs, check=True)
    if not os.path.isdir(root):
        os.makedirs(root)
        deb = glob.glob(os.path.join(debs, "klettres-data_*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    voices = {}
    for folder in folders:
        files = sorted(glob.glob(os.path.join(root, "usr/share/klettres", folder, "*.ogg")))
        clips = [vm.trim(read_audio(f)) for f in files]
        voices["klettres-" + folder.split("/")[0]] = [c for c in clips if c is not None and len(c) >= 0.2 * SR]
    return voices


def asterisk_voices():
    """[{voice: prompts} per half] of the seven asterisk voices, the long mixes' prompt split."""
    out = os.path.expanduser("~/.cache/qualscribe/voice-mix-long")
    root = lvm.fetch(out)
    read_gsm = lvm.gsm_reader()
    rng = np.random.default_rng(lvm.SEED)  # the long mixes' split, so long1/long2 halves hold
    halves = [{}, {}]
    for voice, (package, folder) in lvm.VOICES.items():
        long, short = lvm.load_voice(root, package, folder, read_gsm)
        long = [long[i] for i in rng.permutation(len(long))]
        rng.permutation(len(short))
        for k in (0, 1):
            halves[k][voice] = long[k::2]
    return halves


def turn_plan(material, rng):
    """Turns [(speaker, [pieces])]: each speaker's pieces grouped into 1.5-12 s turns, the
    turns interleaved at random with no speaker twice in a row."""
    queues = {}
    for who, pieces in material.items():
        turns, current, length = [], [], 0
        target = np.clip(rng.lognormal(np.log(4.0), 0.6), 1.5, 12.0) * SR
        for p in pieces:
            current.append(p)
            length += len(p) + 0.25 * SR
            if length >= target:
                turns.append(current)
                current, length = [], 0
                target = np.clip(rng.lognormal(np.log(4.0), 0.6), 1.5, 12.0) * SR
        if current:
            turns.append(current)
        queues[who] = turns
    plan, previous = [], None
    while any(queues.values()):
        choices = [w for w, q in queues.items() if q and w != previous] or [w for w, q in queues.items() if q]
        weights = np.array([len(queues[w]) for w in choices], dtype=float)
        who = choices[rng.choice(len(choices), p=weights / weights.sum())]
        plan.append((who, queues[who].pop(0)))
        previous = who
    return plan


def build(material, dry, rng):
    """Mixes the turn plan into one track; returns (track, reference turns, SNR dB)."""
    plan = turn_plan(material, rng)
    level = {w: rng.uniform(-12, 0) for w in material}
    rooms = {w: vm.room_response(rng) for w in material if w in dry}
    total = int((sum(len(p) + 1.6 * SR for _, ps in plan for p in ps) + 10 * SR))
    track, segments = np.zeros(total), []
    cursor = int(0.5 * SR)
    for who, pieces in plan:
        parts, spans, offset = [], [], 0
        for p in pieces:
            spans.append((offset, offset + len(p)))
            parts.extend([p, np.zeros(int(rng.uniform(0.15, 0.35) * SR))])
            offset += len(p) + len(parts[-1])
        turn = np.concatenate(parts[:-1])
        gain = 10 ** ((level[who] + rng.uniform(-2, 2)) / 20)
        wet = turn / (np.sqrt(np.mean(turn**2)) + 1e-9) * 0.05 * gain
        if who in rooms:
            wet = vm.convolve(wet, rooms[who])
        track[cursor:cursor + len(wet)] += wet
        segments.extend((who, (cursor + a) / SR, (cursor + b) / SR) for a, b in spans)
        end = cursor + len(turn)
        if rng.random() < 1 / 6:
            cursor = end - int(rng.uniform(0.3, 1.0) * SR)
        else:
            cursor = end + int(rng.uniform(0.2, 1.2) * SR)
    length = int(max(b for _, _, b in segments) * SR) + SR
    track = track[:length]
    track, snr_db = vm.add_noise(track, rng, (18, 25))
    # Pauses between pieces (0.15-0.35 s) stay out of the reference: klettres turns are strings
    # of syllables, and scoring their pauses as speech would count them as missed.
    return track, vm.merge(segments, gap=0.1), snr_db


def budgeted(prompts, rng):
    """A random 20-40 s of a prompt voice's clips of <= 8 s (they have minutes; the others 5-45 s)."""
    prompts = [prompts[i] for i in rng.permutation(len(prompts)) if len(prompts[i]) <= 8 * SR]
    budget, chosen = rng.uniform(*DRY_VOICE_S) * SR, []
    while prompts and sum(map(len, chosen)) < budget:
        chosen.append(prompts.pop())
    return chosen


def pick(pool, k, rng):
    names = sorted(pool)
    return [names[i] for i in sorted(rng.permutation(len(names))[:k])]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/qualscribe/voice-mix-many")
    os.makedirs(out, exist_ok=True)
    manifest = []
    asterisk_halves = asterisk_voices()
    for half in ("t", "h"):
        rng = np.random.default_rng([SEED, ord(half)])
        ami = ami_people(AMI_CLIPS[half])
        fleurs = fleurs_readers(FLEURS_IDS[half])
        klettres = klettres_voices(out, KLETTRES[half])
        asterisk = asterisk_halves[0 if half == "t" else 1]
        for name, n_ami, n_fleurs, n_klettres, n_asterisk in RECORDINGS:
            # people with the most speech first, so each is findable
            ami_pick = sorted(ami, key=lambda p: -sum(map(len, ami[p])))[:n_ami]
            n_asterisk += n_ami - len(ami_pick)  # too few AMI people in this half
            material = {p: list(ami[p]) for p in ami_pick}
            material.update({p: list(fleurs[p]) for p in pick(fleurs, n_fleurs, rng)})
            material.update({p: budgeted(klettres[p], rng) for p in pick(klettres, n_klettres, rng)})
            material.update({p: budgeted(asterisk[p], rng) for p in pick(asterisk, n_asterisk, rng)})
            for p in material:  # AMI stretches in time order would replay the meeting; shuffle
                material[p] = [material[p][i] for i in rng.permutation(len(material[p]))]
            dry = {p for p in material if p not in ami}
            track, turns, snr = build(material, dry, rng)
            rec = name + half
            lvm.write_recording(out, rec, track, turns)
            overlap, speech = lvm.overlap_seconds(turns)
            per = {p: round(sum(b - a for w, a, b in turns if w == p), 1) for p in material}
            per_segments = {p: sum(1 for w, _, _ in turns if w == p) for p in material}
            manifest.append({"name": rec, "half": "tune" if half == "t" else "report",
                             "speakers": len(material), "seconds": round(len(track) / SR, 1),
                             "speech_s": round(speech, 1), "overlap_s": round(overlap, 1),
                             "snr_db": round(snr, 1), "speech_s_per_speaker": per,
                             "segments_per_speaker": per_segments})
            print(f"{rec}: {len(track) / SR:.0f} s, {len(material)} speakers, speech {speech:.0f} s, "
                  f"overlap {overlap:.1f} s, SNR {snr:.0f} dB; "
                  + ", ".join(f"{p} {s} s/{per_segments[p]} segments" for p, s in per.items()), flush=True)
    with open(os.path.join(out, "many.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()

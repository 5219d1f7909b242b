#!/usr/bin/env python3
"""Builds the DER cross-check fixtures in tests/fixtures/der/ from the shared corpus.

Deterministic (fixed seed, no third-party packages). Each hypothesis damages the reference in one
known way, so a disagreement with pyannote points at one part of the scorer:

  ami_shift     every turn 0.3 s later (clipped to the 30 s clip), speakers renamed
  ami_merge     the two most talkative speakers of each clip get one label
  ami_relabel   speakers renamed and permuted only (DER must be 0)
  ami_drop      every third turn removed
  ami_false     an extra speaker at 10-12.5 s and 25-26 s in each clip, plus a clip "ghost" that
                only the hypothesis has (scored with ami_ghost.uem, which lists it)
  ami_system    a plausible system output: boundaries jittered ±0.25 s, short turns dropped, one
                turn in five given to another speaker, short false alarms added
  sample_hyp    the same kind of damage on the pyannote sample (scored without UEM)

    scripts/make-der-fixtures.py [CORPUS_DIR] [OUT_DIR]
"""

import random
import shutil
import sys
from pathlib import Path

CLIP_S = 30.0


def read_rttm(path):
    turns = []
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            start = float(f[3])
            turns.append([f[1], start, start + float(f[4]), f[7]])
    return turns


def write_rttm(path, turns):
    turns = sorted(turns, key=lambda t: (t[0], t[1], t[2], t[3]))
    with open(path, "w") as f:
        for uri, start, end, speaker in turns:
            if end - start <= 0:
                continue
            f.write(f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n")


def speakers_by_talk_time(turns, uri):
    talk = {}
    for u, start, end, speaker in turns:
        if u == uri:
            talk[speaker] = talk.get(speaker, 0.0) + end - start
    return sorted(talk, key=lambda s: (-talk[s], s))


def renamer(turns, permute):
    """Per uri, reference speaker -> 'spkNN' (reversed order when permute)."""
    names = {}
    for uri in sorted({t[0] for t in turns}):
        speakers = sorted(speakers_by_talk_time(turns, uri))
        targets = [f"spk{i:02d}" for i in range(len(speakers))]
        if permute:
            targets.reverse()
        names.update({(uri, s): n for s, n in zip(speakers, targets)})
    return lambda uri, speaker: names[(uri, speaker)]


def shift(turns):
    rename = renamer(turns, permute=False)
    return [[u, min(s + 0.3, CLIP_S), min(e + 0.3, CLIP_S), rename(u, k)] for u, s, e, k in turns]


def merge(turns):
    out = []
    for u, s, e, k in turns:
        top_two = speakers_by_talk_time(turns, u)[:2]
        out.append([u, s, e, "merged" if k in top_two else k])
    return out


def relabel(turns):
    rename = renamer(turns, permute=True)
    return [[u, s, e, rename(u, k)] for u, s, e, k in turns]


def drop(turns):
    return [t for i, t in enumerate(turns) if i % 3 != 2]


def false_speaker(turns):
    out = [list(t) for t in turns]
    for uri in sorted({t[0] for t in turns}):
        out.append([uri, 10.0, 12.5, "intruder"])
        out.append([uri, 25.0, 26.0, "intruder"])
    out.append(["ghost", 2.0, 6.0, "intruder"])
    return out


def system(turns, seed, clip_s):
    rng = random.Random(seed)
    rename = renamer(turns, permute=True)
    out = []
    for u, s, e, k in turns:
        s = max(0.0, s + rng.uniform(-0.25, 0.25))
        e = min(clip_s, e + rng.uniform(-0.25, 0.25))
        if e - s < 0.5:
            continue
        speaker = rename(u, k)
        if rng.random() < 0.2:
            others = sorted({rename(u, t[3]) for t in turns if t[0] == u} - {speaker})
            speaker = rng.choice(others) if others else "extra"
        out.append([u, s, e, speaker])
    for uri in sorted({t[0] for t in turns}):
        start = rng.uniform(0.0, clip_s - 1.0)
        out.append([uri, start, start + rng.uniform(0.2, 1.0), "noise"])
    return out


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/der")
    out.mkdir(parents=True, exist_ok=True)

    shutil.copyfile(corpus / "ami_clips/reference.rttm", out / "ami.rttm")
    shutil.copyfile(corpus / "ami_clips/reference.uem", out / "ami.uem")
    with open(out / "ami_ghost.uem", "w") as f:
        f.write((corpus / "ami_clips/reference.uem").read_text())
        f.write("ghost NA 0.000 5.000\n")
    shutil.copyfile(corpus / "pyannote_sample/sample.rttm", out / "sample.rttm")

    ami = read_rttm(out / "ami.rttm")
    write_rttm(out / "ami_shift.rttm", shift(ami))
    write_rttm(out / "ami_merge.rttm", merge(ami))
    write_rttm(out / "ami_relabel.rttm", relabel(ami))
    write_rttm(out / "ami_drop.rttm", drop(ami))
    write_rttm(out / "ami_false.rttm", false_speaker(ami))
    write_rttm(out / "ami_system.rttm", system(ami, seed=7, clip_s=CLIP_S))
    sample = read_rttm(out / "sample.rttm")
    write_rttm(out / "sample_hyp.rttm", system(sample, seed=11, clip_s=31.0))


if __name__ == "__main__":
    main()

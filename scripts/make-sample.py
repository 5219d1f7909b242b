#!/usr/bin/env python3
"""Rebuilds audio_samples/conversacion_es.ogg: the ten Spanish FLEURS clips of the corpus (real
voices, CC BY 4.0) joined into turns with 0.7 s pauses, Ogg Opus at about 28 kb/s, and its
reference (start, end, clip, text per turn) in conversacion_es.txt.

Needs the `soundfile` and `numpy` packages (pip install soundfile numpy); run from the project root.
"""
import numpy as np
import soundfile as sf

ORDER = ["001", "005", "009", "000", "008", "003", "002", "006", "004", "007"]
FLEURS = "../shared/corpus/fleurs"
PAUSE_S = 0.7

parts, lines, t = [], [], 0.0
for clip in ORDER:
    x, sr = sf.read(f"{FLEURS}/flac/fleurs-es-{clip}.flac", dtype="float32")
    assert sr == 16000 and x.ndim == 1
    text = open(f"{FLEURS}/fleurs-es-{clip}.txt", encoding="utf-8").read().strip()
    lines.append(f"{t:.2f}\t{t + len(x) / sr:.2f}\tfleurs-es-{clip}\t{text}\n")
    pause = np.zeros(int(PAUSE_S * sr), dtype="float32")
    parts += [x, pause]
    t += (len(x) + len(pause)) / sr
sf.write("audio_samples/conversacion_es.ogg", np.concatenate(parts), 16000,
         format="OGG", subtype="OPUS", compression_level=0.9)
with open("audio_samples/conversacion_es.txt", "w", encoding="utf-8") as f:
    f.writelines(lines)

#!/usr/bin/env python3
"""Compare qualscribe's Silero VAD (src/vad.rs, through examples/vad_dump.rs) with silero-vad.

For each 16 kHz mono WAV given (FLAC/Opus/other rates are converted with ffmpeg into a temp dir):
  - reference probabilities: onnxruntime on the same .onnx file, fed exactly as silero-vad's
    OnnxWrapper/get_speech_timestamps feed it (512-sample chunks, last one zero-padded, 64 samples
    of context, state [2,1,128] carried);
  - reference regions: silero-vad's own get_speech_timestamps (with torch installed), else its
    get_speech_timestamps_from_probs (pure Python; taken from the installed package's
    utils_vad.py without importing torch) on the onnxruntime probabilities;
  - ours: `cargo run --release --example vad_dump`.
Prints, per file, the largest probability difference and the region boundary differences in ms.
Exits non-zero if any region boundary differs by more than one 32 ms chunk.

Setup (no downloads beyond PyPI; the wheel ships the model):
  python3 -m venv /tmp/vadref && /tmp/vadref/bin/pip install numpy onnxruntime
  /tmp/vadref/bin/pip install --no-deps silero-vad     # or with torch for the full path
usage: /tmp/vadref/bin/python scripts/check-vad-reference.py [--model PATH] [--max-speech-s S] AUDIO...
"""

import argparse
import ast
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import onnxruntime

CHUNK = 512
CONTEXT = 64
TOLERANCE_MS = 32


def default_model() -> Path:
    base = os.environ.get("QUALSCRIBE_MODELS")
    if base:
        return Path(base) / "silero_vad_op18_ifless.onnx"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "qualscribe" / "models" / "silero_vad_op18_ifless.onnx"


def as_wav16k(path: Path, tmp: Path) -> Path:
    """The file itself if it is 16 kHz mono 16-bit WAV, else an ffmpeg conversion of it."""
    try:
        with wave.open(str(path)) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2):
                return path
    except (wave.Error, EOFError):
        pass
    out = tmp / (path.stem + ".wav")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(path), "-ar", "16000", "-ac", "1",
         "-c:a", "pcm_s16le", str(out)],
        check=True,
    )
    return out


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def reference_probs(session, audio: np.ndarray) -> list:
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, CONTEXT), dtype=np.float32)
    probs = []
    for start in range(0, len(audio), CHUNK):
        chunk = np.zeros((1, CHUNK), dtype=np.float32)
        piece = audio[start:start + CHUNK]
        chunk[0, :len(piece)] = piece
        x = np.concatenate([context, chunk], axis=1)
        out, state = session.run(
            None, {"input": x, "state": state, "sr": np.array(16000, dtype=np.int64)}
        )
        context = x[:, -CONTEXT:]
        probs.append(float(out.reshape(-1)[0]))
    return probs


def silero_segmenter():
    """silero-vad's get_speech_timestamps_from_probs, loaded without importing torch."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("silero-vad is not installed: pip install --no-deps silero-vad")
    source_path = Path(list(spec.submodule_search_locations)[0]) / "utils_vad.py"
    tree = ast.parse(source_path.read_text())
    fn = next(n for n in tree.body
              if isinstance(n, ast.FunctionDef) and n.name == "get_speech_timestamps_from_probs")
    namespace = {"List": list, "Callable": object}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(source_path), "exec"), namespace)
    return namespace["get_speech_timestamps_from_probs"]


def torch_regions(model_path: Path, audio: np.ndarray, max_speech_s: float):
    """silero-vad's full get_speech_timestamps with its OnnxWrapper, when torch is installed."""
    try:
        import torch
        from silero_vad.utils_vad import OnnxWrapper, get_speech_timestamps
    except ImportError:
        return None
    model = OnnxWrapper(str(model_path), force_onnx_cpu=True)
    return get_speech_timestamps(torch.from_numpy(audio), model,
                                 max_speech_duration_s=max_speech_s)


def ours(model: Path, max_speech_s: float, wavs: list) -> list:
    root = Path(__file__).resolve().parent.parent
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "vad_dump", "--",
           "--model", str(model)]
    if max_speech_s != float("inf"):
        cmd += ["--max-speech-ms", str(round(max_speech_s * 1000))]
    cmd += [str(w) for w in wavs]
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=default_model())
    parser.add_argument("--max-speech-s", type=float, default=float("inf"),
                        help="max_speech_duration_s (default: no limit, as silero-vad)")
    parser.add_argument("audio", nargs="+", type=Path)
    args = parser.parse_args()

    onnxruntime.set_default_logger_severity(3)
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(args.model), sess_options=opts, providers=["CPUExecutionProvider"])
    segment = silero_segmenter()

    worst = 0
    total_audio_s = total_vad_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        wavs = [as_wav16k(p, Path(tmp)) for p in args.audio]
        results = ours(args.model, args.max_speech_s, wavs)
        for src, wav, mine in zip(args.audio, wavs, results):
            audio = read_wav(wav)
            probs = reference_probs(session, audio)
            ref = torch_regions(args.model, audio, args.max_speech_s)
            how = "get_speech_timestamps"
            if ref is None:
                ref = segment(probs, audio_length_samples=len(audio),
                              max_speech_duration_s=args.max_speech_s)
                how = "get_speech_timestamps_from_probs"
            ref_ms = [(r["start"] // 16, r["end"] // 16) for r in ref]
            my_ms = [tuple(r) for r in mine["regions"]]
            prob_diff = max((abs(a - b) for a, b in zip(probs, mine["probs"])), default=0.0)
            if len(ref_ms) == len(my_ms):
                diffs = [abs(a - b) for ra, rb in zip(ref_ms, my_ms) for a, b in zip(ra, rb)]
                max_diff = max(diffs, default=0)
            else:
                max_diff = 10**9
            worst = max(worst, max_diff)
            seconds = len(audio) / 16000
            total_audio_s += seconds
            total_vad_s += mine["vad_seconds"]
            print(f"{src.name}: {seconds:.1f} s, {len(probs)} chunks, max |dp| {prob_diff:.2e}, "
                  f"regions ref {len(ref_ms)} ours {len(my_ms)} ({how}), "
                  f"max boundary diff {max_diff} ms, {seconds / mine['vad_seconds']:.0f}x realtime")
            if max_diff > TOLERANCE_MS:
                print(f"  reference {ref_ms}\n  ours      {my_ms}")
    print(f"all: {total_audio_s:.1f} s of audio, VAD {total_audio_s / total_vad_s:.0f}x realtime, "
          f"worst boundary diff {worst} ms")
    return 0 if worst <= TOLERANCE_MS else 1


if __name__ == "__main__":
    sys.exit(main())

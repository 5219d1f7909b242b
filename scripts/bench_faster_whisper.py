"""Transcribe files with faster-whisper (int8) and print one JSON line per file plus a summary.

usage: bench_faster_whisper.py CT2_DIR LANG THREADS BEAM FILE...
Loads the model once (like `qualscribe transcribe` does) and times only transcription.
Each line also holds the words with their times in ms, for per-utterance scoring.
FW_VAD=0 in the environment turns faster-whisper's own VAD filter off."""
import json, os, sys, time

from faster_whisper import WhisperModel, decode_audio

ct2_dir, lang, threads, beam, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
model = WhisperModel(ct2_dir, device="cpu", compute_type="int8", cpu_threads=threads)
total_audio = total_wall = 0.0
for f in files:
    audio = decode_audio(f)
    t0 = time.perf_counter()
    vad = os.environ.get("FW_VAD", "1") != "0"
    segments, info = model.transcribe(audio, language=lang, beam_size=beam, word_timestamps=True, vad_filter=vad)
    segments = list(segments)  # the generator does the work
    text = " ".join(s.text.strip() for s in segments)
    wall = time.perf_counter() - t0
    total_audio += info.duration
    total_wall += wall
    words = [{"text": w.word.strip(), "start_ms": int(w.start * 1000), "end_ms": int(w.end * 1000), "probability": w.probability}
             for s in segments for w in (s.words or [])]
    print(json.dumps({"file": f, "audio_s": info.duration, "wall_s": wall, "text": text, "words": words}, ensure_ascii=False))
print(json.dumps({"summary": True, "audio_s": total_audio, "wall_s": total_wall}))

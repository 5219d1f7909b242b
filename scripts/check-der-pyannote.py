#!/usr/bin/env python3
"""Reference DER from pyannote.metrics, to cross-check `qualscribe::eval::der`.

Prints one tab-separated line per uri, then a TOTAL line:
    uri  total_s  missed_s  false_alarm_s  confusion_s  der
Seconds with 6 decimals, DER as a fraction.

Which uris are scored mirrors the Rust module: every reference uri; hypothesis-only uris only when
a UEM is given and lists them; a reference uri missing from a given UEM is scored over an empty
region (all zeros).

Needs `pip install pyannote.metrics` (pyannote.core and pyannote.database come with it).

    scripts/check-der-pyannote.py REF.rttm HYP.rttm [--uem REF.uem] [--collar 0.25] [--skip-overlap]
"""

import argparse
import sys
import warnings

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate


def load_rttm(path):
    """{uri: Annotation}, one track per SPEAKER line (as pyannote.database.util.load_rttm)."""
    annotations = {}
    with open(path) as f:
        for index, line in enumerate(f):
            fields = line.split()
            if not fields or fields[0] != "SPEAKER":
                continue
            uri, start, duration, speaker = fields[1], float(fields[3]), float(fields[4]), fields[7]
            annotation = annotations.setdefault(uri, Annotation(uri=uri))
            annotation[Segment(start, start + duration), index] = speaker
    return annotations


def load_uem(path):
    """{uri: Timeline}"""
    segments = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith(";;"):
                continue
            segments.setdefault(fields[0], []).append(Segment(float(fields[2]), float(fields[3])))
    return {uri: Timeline(segments=s, uri=uri) for uri, s in segments.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("hypothesis")
    parser.add_argument("--uem")
    parser.add_argument("--collar", type=float, default=0.0,
                        help="total collar width in seconds (pyannote convention: ±collar/2)")
    parser.add_argument("--skip-overlap", action="store_true")
    args = parser.parse_args()

    reference = load_rttm(args.reference)
    hypothesis = load_rttm(args.hypothesis)
    uem = load_uem(args.uem) if args.uem else None

    uris = set(reference)
    if uem is not None:
        uris |= set(hypothesis) & set(uem)

    metric = DiarizationErrorRate(collar=args.collar, skip_overlap=args.skip_overlap)
    out = sys.stdout
    for uri in sorted(uris):
        ref = reference.get(uri, Annotation(uri=uri))
        hyp = hypothesis.get(uri, Annotation(uri=uri))
        file_uem = None if uem is None else uem.get(uri, Timeline(uri=uri))
        with warnings.catch_warnings():
            # "uem was approximated by the union of extents": expected without --uem.
            warnings.simplefilter("ignore")
            c = metric(ref, hyp, uem=file_uem, detailed=True)
        print_line(out, uri, c, metric)
    print_line(out, "TOTAL", metric[:], metric)


def print_line(out, uri, c, metric):
    der = metric.compute_metric(c)
    out.write(
        f"{uri}\t{c['total']:.6f}\t{c['missed detection']:.6f}\t{c['false alarm']:.6f}"
        f"\t{c['confusion']:.6f}\t{der:.6f}\n"
    )


if __name__ == "__main__":
    main()

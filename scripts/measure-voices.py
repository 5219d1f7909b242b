#!/usr/bin/env python3
"""Voice-profile threshold on real voices: cosine between speaker embeddings of different
recordings of the same AMI meeting, for the same person and for different people, and how
enrolment would name speakers at several thresholds.

Input: a folder of <uri>.diarization.json (with speaker embeddings), e.g. written by
`examples/diarize_sweep.rs --rttm-dir DIR`, and the reference RTTM. A found speaker is the
reference person who talks most during its turns. Pairs are `FROM:TO` (enrol from FROM, name in
TO). Besides the per-speaker counts, each threshold reports the issue's measure: of the
recordings an enrolled person occurs in (per the reference), in how many that person's name went
to a speaker who is that person, and how many names went to someone else.

usage: scripts/measure-voices.py DIR REF.rttm [--thresholds 0.4,0.5] FROM:TO...
"""
import collections
import json
import os
import sys


def load_ref(path):
    ref = collections.defaultdict(list)
    for line in open(path):
        p = line.split()
        if p and p[0] == 'SPEAKER':
            s, d = float(p[3]), float(p[4])
            ref[p[1]].append((s, s + d, p[7]))
    return ref


def people(d, ref):
    """speaker id -> (person, embedding), in order of most speech first (the speaker a
    researcher would enrol a person from is the one that holds most of their speech)."""
    out = {}
    for s in sorted(d['speakers'], key=lambda s: -s.get('speech_ms', 0)):
        talk = collections.Counter()
        for t in d['turns']:
            if t['speaker'] != s['id']:
                continue
            a, b = t['start_ms'] / 1000, t['end_ms'] / 1000
            for rs, re_, who in ref[d['uri']]:
                o = min(b, re_) - max(a, rs)
                if o > 0:
                    talk[who] += o
        if talk and s.get('embedding'):
            out[s['id']] = (talk.most_common(1)[0][0], s['embedding'])
    return out


def cos(a, b):
    return sum(x * y for x, y in zip(a, b))


def main():
    args = sys.argv[1:]
    thresholds = [0.3, 0.4, 0.5, 0.6]
    if '--thresholds' in args:
        i = args.index('--thresholds')
        thresholds = [float(x) for x in args[i + 1].split(',')]
        del args[i:i + 2]
    folder, ref_path, pairs = args[0], args[1], [p.split(':') for p in args[2:]]
    ref = load_ref(ref_path)
    spk = {}
    for a, b in pairs:
        for uri in (a, b):
            if uri not in spk:
                d = json.load(open(os.path.join(folder, f'{uri}.diarization.json')))
                spk[uri] = people(d, ref)
    same, diff = [], []
    for a, b in pairs:
        for _, (pa, ea) in spk[a].items():
            for _, (pb, eb) in spk[b].items():
                (same if pa == pb else diff).append(cos(ea, eb))
    fmt = lambda v: f"{min(v):.2f}..{max(v):.2f} (n={len(v)})" if v else "none"
    print(f"same person: {fmt(same)}; different people: {fmt(diff)}")
    for t in thresholds:
        right = wrong = expected = 0
        occurs = named_in = 0
        for a, b in pairs:
            profiles = {}
            for _, (p, e) in spk[a].items():
                profiles.setdefault(p, e)  # the person's speaker with most speech
            cand = sorted(((cos(e, pe), sid, name) for sid, (_, e) in spk[b].items()
                           for name, pe in profiles.items() if cos(e, pe) >= t), reverse=True)
            named, used = {}, set()
            for c, sid, name in cand:
                if sid not in named and name not in used:
                    named[sid] = name
                    used.add(name)
            for sid, (person, _) in spk[b].items():
                expected += person in profiles
                if sid in named:
                    right += named[sid] == person
                    wrong += named[sid] != person
            present = {who for _, _, who in ref[b]}
            for person in profiles:
                if person in present:
                    occurs += 1
                    named_in += any(named.get(sid) == person == p for sid, (p, _) in spk[b].items())
        print(f"threshold {t:.2f}: named right {right} of {expected}, wrong {wrong}; "
              f"recordings with the enrolled person named: {named_in} of {occurs}")


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Voice enrolment on real voices: enrol each person from one recording, name the speakers of
another, and count how often the name lands on that person and how often on someone else.

Input: a folder of <uri>.diarization.json (with speaker embeddings), e.g. written by
`examples/diarize_sweep.rs --rttm-dir DIR`, and the reference RTTM. A found speaker is the
reference person who talks most during its turns. Pairs are `FROM:TO` (enrol from FROM, name in
TO). A person is enrolled from their speaker with most speech in FROM (the one a researcher
would pick), and only when that speaker has at least --min-enrol-s of speech outside overlap
(what `qualscribe speakers enroll` refuses below), and the profile is that speaker's embedding
in the diarization. With --enrol QUALSCRIBE AUDIO_DIR, the profile is made by the real command
instead (`QUALSCRIBE speakers enroll PERSON --from DIR/<FROM>.diarization.json --audio
AUDIO_DIR/<FROM>.wav --speaker ID`: from the speaker's cleanest speech), and a refusal by it
means the person is not enrolled. --profiles-dir keeps the profiles made, in DIR/<FROM>/ (e.g. to
re-run the diarization of TO with `diarize_sweep --voices DIR/<FROM>`, as `run --voices` would).

Naming mirrors `src/diarize/voices.rs::name_speakers`: a speaker may take a profile's name when
their cosine is at least the threshold, the speaker has at least --min-speaker-s of speech, the
profile beats every other profile for that speaker by --profile-margin, and the speaker beats
every other speaker for that profile by --speaker-margin; among those pairs a name goes to one
speaker only, best first (greedy) or by the one-to-one assignment with the highest total
similarity (--assign optimal). With --min-purity, a speaker whose `voice_purity` (mean cosine of
its clean windows to their mean, written with the clean voice) is lower is never named. Every
value given as a comma list is swept.

The speaker embeddings compared are those in the diarization JSON, i.e. what `diarize` names by:
diarize_sweep writes the windows recipe's own (`--clean-voices`: clean voices) and the
segmentation recipe's clean voices (`voices::set_clean_voices`; `--recipe-embeddings`: its own).

The issue's measure: of the recordings an enrolled person occurs in (per the reference), in how
many that person's name went to a speaker who is that person, and how many names went to someone
else.

The denominator counts, for each pair, every enrolled person (refusals by `speakers enroll` are
not counted) who speaks in TO per the reference, however briefly: an AMI person with 0.3 s in a
30 s clip counts. "own speaker" says in how many of those TO has a speaker with at least
--min-speaker-s whose talk is mostly that person, i.e. could be named at all; --verbose says why
each occurrence was missed (no speaker of their own, too little speech, cosine, which margin).

Pair lists (`@NAME` for a pair argument; both directions of every pair of recordings sharing
people): the issue-10 tuning pairs `@ami-tune` (dev00/dev01, trn07/trn08) and `@mix-tune` (mixes
1-3), the reported pairs `@ami-held` (trn00/trn01/trn03, trn01/trn02, trn06/trn09, tst00/tst01)
and `@mix-held` (mixes 4-6).

usage: scripts/measure-voices.py DIR REF.rttm [--thresholds 0.6] [--min-enrol-s 5]
       [--min-speaker-s 0] [--profile-margin 0] [--speaker-margin 0] [--min-purity 0]
       [--assign greedy,optimal]
       [--enrol QUALSCRIBE AUDIO_DIR [--profiles-dir DIR]] [--verbose] FROM:TO|@NAME...
"""
import collections
import itertools
import json
import os
import subprocess
import sys
import tempfile

PAIRS = {
    'ami-tune': 'dev00:dev01 trn07:trn08',
    'ami-held': 'trn00:trn01 trn00:trn03 trn01:trn03 trn01:trn02 trn06:trn09 tst00:tst01',
    'mix-tune': 'mix1:mix2 mix1:mix3 mix2:mix3',
    'mix-held': 'mix4:mix5 mix4:mix6 mix5:mix6',
}


def pair_args(args):
    """FROM:TO arguments, with @NAME expanded to both directions of its pairs."""
    out = []
    for a in args:
        if a.startswith('@'):
            for p in PAIRS[a[1:]].split():
                x, y = p.split(':')
                out += [[x, y], [y, x]]
        else:
            out.append(a.split(':'))
    return out


def load_ref(path):
    ref = collections.defaultdict(list)
    for line in open(path):
        p = line.split()
        if p and p[0] == 'SPEAKER':
            s, d = float(p[3]), float(p[4])
            ref[p[1]].append((s, s + d, p[7]))
    return ref


def speakers(d, ref):
    """speaker id -> dict(person, embedding, speech_s, clean_s), most speech first."""
    out = {}
    for s in sorted(d['speakers'], key=lambda s: -s.get('speech_ms', 0)):
        talk = collections.Counter()
        clean = 0.0
        for t in d['turns']:
            if t['speaker'] != s['id']:
                continue
            a, b = t['start_ms'] / 1000, t['end_ms'] / 1000
            if not t.get('overlap'):
                clean += b - a
            for rs, re_, who in ref[d['uri']]:
                o = min(b, re_) - max(a, rs)
                if o > 0:
                    talk[who] += o
        if talk and s.get('embedding'):
            out[s['id']] = dict(person=talk.most_common(1)[0][0], embedding=s['embedding'],
                                speech_s=s.get('speech_ms', 0) / 1000, clean_s=clean,
                                purity=s.get('voice_purity'),
                                share=talk.most_common(1)[0][1] / sum(talk.values()))
    return out


def cos(a, b):
    return sum(x * y for x, y in zip(a, b))


def optimal(pairs):
    """The one-to-one choice of (sim, speaker, profile) pairs with the highest total."""
    spk = sorted({s for _, s, _ in pairs})
    prof = sorted({p for _, _, p in pairs})
    sim = {(s, p): c for c, s, p in pairs}
    best, best_total = [], -1.0
    # Tiny sizes here (≤ 9 speakers, ≤ 5 profiles): try every injection of profiles.
    for k in range(len(prof), 0, -1):
        for ps in itertools.combinations(prof, k):
            for ss in itertools.permutations(spk, k):
                if all((s, p) in sim for s, p in zip(ss, ps)):
                    total = sum(sim[(s, p)] for s, p in zip(ss, ps))
                    if total > best_total:
                        best, best_total = list(zip(ss, ps)), total
    return {s: p for s, p in best}


def name(target, profiles, o):
    sims = {(sid, n): cos(sp['embedding'], pe) for sid, sp in target.items()
            for n, pe in profiles.items()}
    pairs = []
    for (sid, n), c in sims.items():
        if c < o['threshold'] or target[sid]['speech_s'] < o['min_speaker_s']:
            continue
        purity = target[sid]['purity']
        if purity is not None and purity < o['min_purity']:
            continue
        other_p = [sims[(sid, m)] for m in profiles if m != n]
        other_s = [sims[(t, n)] for t in target if t != sid]
        if other_p and c - max(other_p) < o['profile_margin']:
            continue
        if other_s and c - max(other_s) < o['speaker_margin']:
            continue
        pairs.append((c, sid, n))
    if o['assign'] == 'optimal':
        return optimal(pairs)
    named, used = {}, set()
    for c, sid, n in sorted(pairs, reverse=True):
        if sid not in named and n not in used:
            named[sid] = n
            used.add(n)
    return named


def why_missed(target, profiles, o, p, ref_s):
    """Why profile p was not named in target, where p speaks ref_s seconds per the reference."""
    own = [sid for sid, sp in target.items() if sp['person'] == p]
    if not own:
        return f"no speaker of their own ({ref_s:.1f} s in the reference: merged or not found)"
    sims = {(sid, n): cos(sp['embedding'], pe) for sid, sp in target.items()
            for n, pe in profiles.items()}
    sid = max(own, key=lambda s: sims[(s, p)])
    c, sp = sims[(sid, p)], target[sid]
    r = []
    if len(own) > 1:
        r.append(f"{len(own)} speakers for this person")
    if sp['speech_s'] < o['min_speaker_s']:
        r.append(f"speaker has {sp['speech_s']:.1f} s")
    if c < o['threshold']:
        r.append(f"cosine {c:.3f}")
    if sp['purity'] is not None and sp['purity'] < o['min_purity']:
        r.append(f"purity {sp['purity']:.3f}")
    others = [(sims[(sid, m)], m) for m in profiles if m != p]
    if others and c - max(others)[0] < o['profile_margin']:
        r.append(f"profile margin ({max(others)[1]} {max(others)[0]:.3f})")
    others = [(sims[(t, p)], t) for t in target if t != sid]
    if others and c - max(others)[0] < o['speaker_margin']:
        t = max(others)[1]
        r.append(f"speaker margin ({t}, {target[t]['person']}, {max(others)[0]:.3f})")
    return (f"{sid} ({100 * sp['share']:.0f} % theirs, {sp['speech_s']:.1f} s, cosine {c:.3f}): "
            + (', '.join(r) or 'lost in the assignment'))


def main():
    args = sys.argv[1:]
    opts = {'thresholds': '0.6', 'min-enrol-s': '5', 'min-speaker-s': '0',
            'profile-margin': '0', 'speaker-margin': '0', 'min-purity': '0',
            'assign': 'greedy'}
    enrol, verbose, profiles_dir = None, False, None
    if '--profiles-dir' in args:
        i = args.index('--profiles-dir')
        profiles_dir = args[i + 1]
        del args[i:i + 2]
    if '--enrol' in args:
        i = args.index('--enrol')
        enrol = args[i + 1:i + 3]
        del args[i:i + 3]
    for key in opts:
        if f'--{key}' in args:
            i = args.index(f'--{key}')
            opts[key] = args[i + 1]
            del args[i:i + 2]
    if '--verbose' in args:
        verbose = True
        args.remove('--verbose')
    folder, ref_path, pairs = args[0], args[1], pair_args(args[2:])
    ref = load_ref(ref_path)
    spk = {}
    for a, b in pairs:
        for uri in (a, b):
            if uri not in spk:
                d = json.load(open(os.path.join(folder, f'{uri}.diarization.json')))
                spk[uri] = speakers(d, ref)
    made = {}  # (uri, person) -> embedding or None (refused), from the real command
    if enrol:
        tmp = profiles_dir or tempfile.mkdtemp()
        for uri in sorted({a for a, _ in pairs}):
            done = set()
            for sid, sp in spk[uri].items():
                if sp['person'] in done:
                    continue
                done.add(sp['person'])
                r = subprocess.run(
                    [enrol[0], 'speakers', 'enroll', sp['person'], '--from',
                     os.path.join(folder, f'{uri}.diarization.json'), '--audio',
                     os.path.join(enrol[1], f'{uri}.wav'), '--speaker', sid,
                     '--voices', os.path.join(tmp, uri)], capture_output=True, text=True)
                if r.returncode == 0:
                    f = os.path.join(tmp, uri, f"{sp['person']}.voice.json")
                    made[(uri, sp['person'])] = json.load(open(f))['embedding']
                else:
                    made[(uri, sp['person'])] = None
                    if verbose:
                        print(f"  {r.stderr.strip()}")
    same, diff = [], []
    for a, b in pairs:
        for sa in spk[a].values():
            for sb in spk[b].values():
                (same if sa['person'] == sb['person'] else diff).append(
                    cos(sa['embedding'], sb['embedding']))
    fmt = lambda v: f"{min(v):.2f}..{max(v):.2f} (n={len(v)})" if v else "none"
    print(f"same person: {fmt(same)}; different people: {fmt(diff)}")
    floats = lambda k: [float(x) for x in opts[k].split(',')]
    grid = itertools.product(floats('thresholds'), floats('min-enrol-s'), floats('min-speaker-s'),
                             floats('profile-margin'), floats('speaker-margin'),
                             floats('min-purity'), opts['assign'].split(','))
    if verbose:
        for uri in sorted(spk):
            for sid, sp in spk[uri].items():
                pur = 'none' if sp['purity'] is None else f"{sp['purity']:.3f}"
                print(f"  {uri} {sid}: {sp['person']} ({100 * sp['share']:.0f} % of its talk), "
                      f"{sp['speech_s']:.1f} s, purity {pur}")
    for t, me, ms, pm, sm, mp, assign in grid:
        o = dict(threshold=t, min_speaker_s=ms, profile_margin=pm, speaker_margin=sm,
                 min_purity=mp, assign=assign)
        occurs = named_in = wrong = refused = enrolled = own_speaker = 0
        for a, b in pairs:
            profiles = {}
            for sp in spk[a].values():
                p = sp['person']
                if p in profiles or p + '?' in profiles:
                    continue  # the person's speaker with most speech only
                if enrol:
                    e = made[(a, p)]
                    profiles[p if e else p + '?'] = e
                elif sp['clean_s'] >= me:
                    profiles[p] = sp['embedding']
                else:
                    profiles[p + '?'] = None
            refused += sum(1 for p in profiles if p.endswith('?'))
            profiles = {p: e for p, e in profiles.items() if e is not None}
            enrolled += len(profiles)
            named = name(spk[b], profiles, o)
            ref_s = collections.Counter()
            for rs, re_, who in ref[b]:
                ref_s[who] += re_ - rs
            for sid, n in named.items():
                if spk[b][sid]['person'] != n:
                    wrong += 1
                    if verbose:
                        print(f"  {a}->{b}: {sid} ({spk[b][sid]['person']}) named {n}")
            for p in profiles:
                if p in ref_s:
                    occurs += 1
                    own_speaker += any(sp['person'] == p and sp['speech_s'] >= ms
                                       for sp in spk[b].values())
                    hit = any(named.get(sid) == p == sp['person'] for sid, sp in spk[b].items())
                    named_in += hit
                    if verbose and not hit:
                        print(f"  {a}->{b}: {p} not named: "
                              f"{why_missed(spk[b], profiles, o, p, ref_s[p])}")
        pct = 100 * named_in / occurs if occurs else 0
        print(f"thr {t:.2f} enrol≥{me:g}s spk≥{ms:g}s pmargin {pm:.2f} smargin {sm:.2f} "
              f"purity≥{mp:.2f} {assign}: "
              f"named in {named_in}/{occurs} ({pct:.0f} %; own speaker in {own_speaker}), "
              f"wrong {wrong}; "
              f"enrolled {enrolled}, refused {refused}")


if __name__ == '__main__':
    main()

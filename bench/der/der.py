"""Diarization error rate and helpers shared by bench/der/run and tests.

DER = (missed speech + false alarm + speaker confusion) / reference speech, scored on a 10 ms
grid with a collar (default 0.25 s) around every reference segment boundary left out, and the
best one-to-one mapping of hypothesis to reference speakers (exhaustive for <= 8 speakers).
Hypothesis segments are built from words: each word's span with its speaker, and a gap of less
than HYP_FILL_S between two words of one speaker filled (a turn's short pauses are speech).
"""
import itertools

STEP = 0.01
HYP_FILL_S = 0.5


def load_ref(path):
    out = []
    with open(path) as f:
        next(f)
        for line in f:
            s, e, who = line.rstrip("\n").split("\t")
            out.append((float(s), float(e), who))
    return out


def hyp_from_words(words):
    """words: [(start, end, speaker)] in time order -> [(start, end, speaker)] segments."""
    segs = []
    for s, e, spk in words:
        if e <= s:
            continue
        if segs and segs[-1][2] == spk and s - segs[-1][1] < HYP_FILL_S:
            segs[-1] = (segs[-1][0], max(e, segs[-1][1]), spk)
        else:
            segs.append((s, e, spk))
    return segs


def _grid(segs, n):
    g = [None] * n
    for s, e, who in segs:
        for i in range(max(0, int(round(s / STEP))), min(n, int(round(e / STEP)))):
            g[i] = who
    return g


def der(ref, hyp, collar=0.25):
    """Returns dict(total, missed, fa, confusion, der) in seconds (der a fraction)."""
    end = max([e for _, e, _ in ref] + [e for _, e, _ in hyp] + [0.0])
    n = int(end / STEP) + 2
    r, h = _grid(ref, n), _grid(hyp, n)
    scored = [True] * n
    c = int(round(collar / STEP))
    for s, e, _ in ref:
        for t in (s, e):
            k = int(round(t / STEP))
            for i in range(max(0, k - c), min(n, k + c)):
                scored[i] = False
    rs = sorted({x for x in r if x is not None})
    hs = sorted({x for x in h if x is not None}, key=str)
    overlap = {}
    total = missed = fa = 0
    for i in range(n):
        if not scored[i]:
            continue
        if r[i] is not None:
            total += 1
            if h[i] is None:
                missed += 1
            else:
                overlap[(h[i], r[i])] = overlap.get((h[i], r[i]), 0) + 1
        elif h[i] is not None:
            fa += 1
    both = sum(overlap.values())
    best = 0
    if rs and hs:
        # exhaustive: assign each hyp speaker a distinct ref speaker (or none)
        if len(hs) <= len(rs):
            for perm in itertools.permutations(rs, len(hs)):
                best = max(best, sum(overlap.get((hh, rr), 0) for hh, rr in zip(hs, perm)))
        else:
            for perm in itertools.permutations(hs, len(rs)):
                best = max(best, sum(overlap.get((hh, rr), 0) for hh, rr in zip(perm, rs)))
    conf = both - best
    tot = max(total, 1)
    return {"total": total * STEP, "missed": missed * STEP, "fa": fa * STEP, "confusion": conf * STEP,
            "der": (missed + fa + conf) / tot}


def purity(ref, words):
    """Share of words (by count) whose speaker is the one mapped to the reference speaker at
    their midpoint, under the best mapping: a word-level agreement figure for tests."""
    pairs = []
    for s, e, spk in words:
        m = (s + e) / 2
        who = next((w for a, b, w in ref if a - 0.3 <= m <= b + 0.3), None)
        if who is not None:
            pairs.append((spk, who))
    if not pairs:
        return 0.0
    hs = sorted({p[0] for p in pairs}, key=str)
    rs = sorted({p[1] for p in pairs})
    cnt = {}
    for p in pairs:
        cnt[p] = cnt.get(p, 0) + 1
    best = 0
    if len(hs) <= len(rs):
        for perm in itertools.permutations(rs, len(hs)):
            best = max(best, sum(cnt.get((hh, rr), 0) for hh, rr in zip(hs, perm)))
    else:
        for perm in itertools.permutations(hs, len(rs)):
            best = max(best, sum(cnt.get((hh, rr), 0) for hh, rr in zip(perm, rs)))
    return best / len(pairs)

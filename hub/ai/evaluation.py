"""How good a model is, measured on lines it was not trained on, in the terms the settings
page shows: top-1 accuracy, and at each confidence threshold the precision (share right among
the lines at or above it) and coverage (share of lines at or above it): "at 0.90: 97% correct,
covers 64% of lines". A reliability table (predicted probability vs observed accuracy per
bin) shows whether the probabilities are calibrated.

The other two tasks are measured the same way, on answers people gave (`mapping_evaluation`,
`vendor_evaluation`), so their thresholds read alike on the page.

Two baselines are scored on the same split, so a model is only worth having if it beats them:
- `vendor`: each vendor's most frequent account in the training part (confidence: the share of
  that vendor's lines it covers; the most frequent account overall for an unseen vendor);
- `fuzzy`: the account of the most similar past description (rapidfuzz `token_set_ratio`
  over the distinct normalised descriptions; confidence: the similarity / 100).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from hub.ai import vendor_match
from hub.ai.features import normalize
from hub.ai.lines import LineInput
from hub.ai.model import Example, LineCoder, Prediction
from hub.ai.settings import at_threshold  # noqa: F401 - re-exported (bench/ai_coding.py)

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)
HOLDOUT = 0.2


def split(examples: Sequence[Example], holdout: float = HOLDOUT, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, held out): a seeded shuffle; feedback corrections always train (they are not the ledger's history)."""
    history = [e for e in examples if not e.correction]
    order = list(range(len(history)))
    random.Random(seed).shuffle(order)
    cut = int(len(history) * (1 - holdout))
    train = [history[i] for i in order[:cut]] + [e for e in examples if e.correction]
    return train, [history[i] for i in order[cut:]]


def threshold_table(predictions: Sequence[Prediction], truth: Sequence[str], thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """Precision and coverage at each threshold (a chart's points)."""
    p = np.array([x.probability for x in predictions], dtype=float)
    right = np.array([x.label == t for x, t in zip(predictions, truth)])
    rows = []
    for t in thresholds:
        chosen = p >= t
        n = int(chosen.sum())
        rows.append({"threshold": t, "precision": float(right[chosen].mean()) if n else None,
                     "coverage": n / len(p) if len(p) else 0.0, "count": n})
    return rows


def reliability(predictions: Sequence[Prediction], truth: Sequence[str], bins: int = 10) -> dict:
    """Predicted vs observed accuracy per probability bin, and the expected calibration error."""
    p = np.array([x.probability for x in predictions], dtype=float)
    right = np.array([x.label == t for x, t in zip(predictions, truth)], dtype=float)
    rows, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        chosen = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        n = int(chosen.sum())
        if n:
            predicted, observed = float(p[chosen].mean()), float(right[chosen].mean())
            ece += n / len(p) * abs(predicted - observed)
            rows.append({"bin": [lo, hi], "count": n, "predicted": predicted, "observed": observed})
    return {"bins": rows, "ece": ece}


def vendor_baseline(train: Sequence[Example]) -> Callable[[Sequence[Example]], list[Prediction]]:
    by_vendor: dict[str, Counter] = defaultdict(Counter)
    for e in train:
        by_vendor[e.line.vendor][e.label] += e.weight
    overall = Counter()
    for counts in by_vendor.values():
        overall.update(counts)
    fallback = overall.most_common(1)[0] if overall else (None, 0)
    total = sum(overall.values()) or 1

    def predict(items: Sequence[Example]) -> list[Prediction]:
        out = []
        for e in items:
            counts = by_vendor.get(e.line.vendor)
            if counts:
                label, n = counts.most_common(1)[0]
                out.append(Prediction(label, n / sum(counts.values())))
            else:
                out.append(Prediction(fallback[0], fallback[1] / total))
        return out

    return predict


def fuzzy_baseline(train: Sequence[Example], workers: int = -1) -> Callable[[Sequence[Example]], list[Prediction]]:
    votes: dict[str, Counter] = defaultdict(Counter)
    for e in train:
        votes[normalize(e.line.description)][e.label] += e.weight
    texts = list(votes)
    labels = [votes[t].most_common(1)[0][0] for t in texts]

    def predict(items: Sequence[Example]) -> list[Prediction]:
        queries = [normalize(e.line.description) for e in items]
        distinct = list(dict.fromkeys(queries))  # a ledger repeats itself: each distinct text is compared once
        answers: dict[str, Prediction] = {}
        for start in range(0, len(distinct), 1000):  # bounded memory: 1000 x distinct texts bytes at a time
            chunk = distinct[start:start + 1000]
            scores = process.cdist(chunk, texts, scorer=fuzz.token_set_ratio, dtype=np.uint8, workers=workers)
            best = scores.argmax(axis=1)
            answers.update((q, Prediction(labels[j], float(scores[i, j]) / 100)) for i, (q, j) in enumerate(zip(chunk, best)))
        return [answers[q] for q in queries]

    return predict


@dataclass
class Evaluation:
    """The result of one held-out evaluation, as stored with a model (`as_json`)."""

    train_size: int
    test_size: int
    top1: float
    table: list[dict]
    calibration: dict
    baselines: dict
    fit_seconds: float

    def as_json(self) -> dict:
        return {"train_size": self.train_size, "test_size": self.test_size, "top1": self.top1, "thresholds": self.table,
                "calibration": self.calibration, "baselines": self.baselines, "fit_seconds": self.fit_seconds}


def _summary(predictions: list[Prediction], truth: list[str]) -> dict:
    return {"top1": float(np.mean([p.label == t for p, t in zip(predictions, truth)])) if truth else None,
            "thresholds": threshold_table(predictions, truth)}


def evaluate(examples: Sequence[Example], *, holdout: float = HOLDOUT, seed: int = 0, baselines: bool = True) -> Evaluation:
    """Train on one part, measure on the held-out part (model and, when asked, both baselines)."""
    train, test = split(examples, holdout, seed)
    started = time.process_time()
    model = LineCoder.fit(train)
    fit_seconds = time.process_time() - started
    truth = [e.label for e in test]
    predictions = model.predict([e.line for e in test])
    summary = _summary(predictions, truth)
    others = {}
    if baselines:
        others = {"vendor": _summary(vendor_baseline(train)(test), truth), "fuzzy": _summary(fuzzy_baseline(train)(test), truth)}
    return Evaluation(len(train), len(test), summary["top1"], summary["thresholds"], reliability(predictions, truth), others, fit_seconds)


# ---- the other tasks: answers measured against people's -------------------------------------
def measured(predictions: Sequence[Prediction], truth: Sequence[str | None], *, train_size: int) -> Evaluation:
    """The evaluation of answers made for inputs whose right answer is known (None: no answer
    is right), in the shape of line coding's."""
    predictions, truth = list(predictions), ["" if t is None else t for t in truth]
    summary = _summary(predictions, truth)
    return Evaluation(train_size, len(truth), summary["top1"], summary["thresholds"], reliability(predictions, truth), {}, 0.0)


def mapping_evaluation(model: LineCoder, known: Mapping[str, str], *, train_size: int) -> Evaluation:
    """Account mapping (hub/ai/mapping.py), measured on the categories whose account a person
    chose (`known`: category -> account): each name read as a bill line by the integration's
    line-coding model, as mapping.py reads a category without coded history, against the
    person's account. Held out: the model learnt from bill lines, never from these names or
    mappings. The history source (a category's coded lines) is not measured: the import gives
    a line its category from its account's mapping, so those lines would give the answer away."""
    categories = sorted(known)
    return measured(model.predict([LineInput(c) for c in categories]), [known[c] for c in categories], train_size=train_size)


def vendor_evaluation(decided: Sequence[tuple[Mapping[str, Any], str | None]], pool: Sequence[Mapping[str, Any]]) -> Evaluation:
    """Vendor matching (hub/ai/vendor_match.py), measured on the hub vendors people decided
    about (`decided`: (vendor, the ledger vendor's row id it is, or None when they rejected
    every match)): its best match among the ledger's vendors (`pool`, itself left out) and
    that match's probability, right when it is the vendor people said. The matcher is a fixed
    scorer that learns nothing from verdicts, so every one is held out. Coverage: the share of
    these vendors matched at or above a threshold (linked or suggested by the export)."""
    predictions, truth, known = [], [], {str(c["id"]) for c in pool}
    for local, right in decided:
        if right is not None and right not in known:  # that ledger vendor is gone: nothing to find
            continue
        match = vendor_match.best_match(local, [c for c in pool if c["id"] != local["id"]])
        predictions.append(Prediction(None, 0.0) if match is None else Prediction(str(match.remote_vendor_id), match.probability))
        truth.append(right)
    return measured(predictions, truth, train_size=len(pool))

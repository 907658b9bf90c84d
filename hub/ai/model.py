"""The line-coding model: bill line -> ledger account, with a probability that means what it
says ("0.9": about nine in ten such suggestions were right on data it had not seen).

A linear SVM (hinge loss, one-vs-rest, sklearn `SGDClassifier`) over `LineFeatures` ranks the accounts; its
top score and the margin to the runner-up are not probabilities, so they are calibrated into
one: the chance that the top account is right. The calibrator (isotonic regression, monotone,
so a higher margin never means a lower probability) is fitted on out-of-fold predictions
(k-fold over the training data), then the classifier is refitted on all of it: every
training line serves both the fit and the calibration without the calibration ever seeing a
score of a line the classifier was trained on.

Feedback: corrections enter training as weighted examples, and the exact inputs people
corrected are remembered (`corrections`: input key -> account): the next model answers those
with the corrected account.

What is pickled is this object (sklearn estimators and plain data); storage signs the bytes
and loads only what the hub signed (hub/ai/storage.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.linear_model import SGDClassifier

from hub.ai.features import LineFeatures
from hub.ai.lines import CORRECTION_WEIGHT, Example, LineInput, amount_bucket, input_key, normalize  # noqa: F401 - re-exported

FOLDS = 3
MIN_EXAMPLES = 20  # below this there is nothing to learn from


@dataclass(frozen=True)
class Prediction:
    label: str | None
    probability: float
    runner_up: str | None = None


class NotEnoughData(ValueError):
    """Too few coded lines (or a single account) to train on."""


def _grouped(examples: Sequence[Example]) -> list[Example]:
    """Lines the features cannot tell apart (same normalised words, vendor, amount bucket) and
    coded alike, as one example weighing as much as all of them: a ledger repeats itself (the
    same "16d framing nails 50lb box" every month), and fitting each repeat costs time and
    teaches nothing more than the weight does."""
    groups: dict[tuple, list] = {}
    for e in examples:
        key = (normalize(e.line.description), e.line.vendor, amount_bucket(e.line.amount), e.label, e.correction)
        group = groups.get(key)
        if group is None:
            groups[key] = [e.line, e.weight]
        else:
            group[1] += e.weight
    return [Example(line, key[3], weight, key[4]) for key, (line, weight) in groups.items()]


def _svm() -> SGDClassifier:
    """A linear SVM (hinge loss) fitted by SGD, one-vs-rest over two cores: sklearn's LinearSVC
    gives the same ranking but its dual solver needs minutes on 100,000 weighted lines (the
    weights of repeated lines slow its convergence); ten epochs of SGD take seconds."""
    return SGDClassifier(loss="hinge", alpha=2e-5, max_iter=10, tol=None, n_jobs=2, random_state=0)


def _top_two(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index of the best, its score's margin over the second, index of the second) per row."""
    if scores.ndim == 1:  # two classes: sklearn gives one column (positive = class 1)
        scores = np.column_stack([-scores, scores])
    order = np.argsort(-scores, axis=1)[:, :2]
    rows = np.arange(scores.shape[0])
    best, second = order[:, 0], order[:, 1]
    return best, scores[rows, best] - scores[rows, second], second


@dataclass
class LineCoder:
    features: LineFeatures
    classifier: SGDClassifier
    calibrator: IsotonicRegression
    classes: list[str]
    corrections: dict[str, str] = field(default_factory=dict)
    training_size: int = 0

    @classmethod
    def fit(cls, examples: Sequence[Example], *, folds: int = FOLDS) -> "LineCoder":
        if len(examples) < MIN_EXAMPLES:
            raise NotEnoughData(f"{len(examples)} coded lines; at least {MIN_EXAMPLES} are needed")
        if len({e.label for e in examples}) < 2:
            raise NotEnoughData("every coded line has the same account: nothing to choose between")
        grouped = _grouped(examples)
        labels = np.array([e.label for e in grouped])
        features = LineFeatures(min_df=1)
        x = features.fit_transform([e.line for e in grouped])
        weights = np.array([e.weight for e in grouped], dtype=float)
        # out-of-fold margins for the calibrator (classes rarer than the folds go in every fold's training part)
        counts = {label: int((labels == label).sum()) for label in set(labels)}
        rare = np.array([counts[label] < folds for label in labels])
        oof_margin, oof_right, oof_weight = [], [], []
        common = np.flatnonzero(~rare)
        if len(set(labels[common])) >= 2 and len(common) >= 2 * folds:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
            for train, test in splitter.split(common, labels[common]):
                train_idx = np.concatenate([common[train], np.flatnonzero(rare)])
                test_idx = common[test]
                if len(set(labels[train_idx])) < 2:
                    continue
                svm = _svm().fit(x[train_idx], labels[train_idx], sample_weight=weights[train_idx])
                best, margin, _ = _top_two(svm.decision_function(x[test_idx]))
                oof_margin.append(margin)
                oof_right.append(svm.classes_[best] == labels[test_idx])
                oof_weight.append(weights[test_idx])
        calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        if oof_margin:
            calibrator.fit(np.concatenate(oof_margin), np.concatenate(oof_right).astype(float), sample_weight=np.concatenate(oof_weight))
        else:  # too little data to hold any out: nothing is confident
            calibrator.fit([0.0, 1.0], [0.0, 0.0])
        classifier = _svm().fit(x, labels, sample_weight=weights)
        corrections = {input_key(e.line): e.label for e in examples if e.correction}
        return cls(features, classifier, calibrator, [str(c) for c in classifier.classes_], corrections, len(examples))

    def __getstate__(self) -> dict:
        """Pickled without the scoring cache (`_weights`, rebuilt on first use)."""
        return {k: v for k, v in self.__dict__.items() if k != "_weights"}

    def _scores(self, x) -> np.ndarray:
        """The classifier's decision values, against a (features x classes) copy of its weights:
        sklearn multiplies by `coef_.T`, which scipy copies on every call (25 ms a line here)."""
        if getattr(self, "_weights", None) is None:
            self._weights = np.ascontiguousarray(self.classifier.coef_.T)
        return np.asarray(x @ self._weights) + self.classifier.intercept_

    def predict(self, lines: Sequence[LineInput]) -> list[Prediction]:
        """The most likely account of each line and the calibrated probability that it is right."""
        if not lines:
            return []
        x = self.features.transform(list(lines))
        best, margin, second = _top_two(self._scores(x))
        probability = self.calibrator.predict(margin)
        out = []
        for i, line in enumerate(lines):
            corrected = self.corrections.get(input_key(line))
            if corrected is not None:  # a person said what this exact input is
                out.append(Prediction(corrected, max(float(probability[i]), 0.99), self.classes[best[i]]))
            else:
                out.append(Prediction(self.classes[best[i]], float(probability[i]), self.classes[second[i]]))
        return out

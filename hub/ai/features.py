"""What the line-coding model sees of a bill line: its description (normalised), its vendor and
its amount, turned into one sparse matrix.

Why these features: a description is short, vendor-worded text with item codes, abbreviations
and typos, so word n-grams (what it says) are joined by character n-grams within words (what
survives "boardds" or "PLYWD"). The vendor matters on its own (a lumber yard's "delivery
charge" is coded by that company's habit) and with the words (vendor x word tokens), and the
amount separates a $40 permit re-inspection from a $3,000 plan review only coarsely: a
log-scale bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.utils import murmurhash3_32

from hub.ai.lines import _WORD, LineInput, amount_bucket, input_key, normalize  # noqa: F401 - re-exported


def _meta_tokens(line: LineInput) -> str:
    vendor, bucket = f"v{line.vendor or 'none'}", amount_bucket(line.amount)
    words = _WORD.findall(normalize(line.description))[:4]
    return " ".join([vendor, f"a{bucket}", f"{vendor}_a{bucket}", *(f"{vendor}_{w}" for w in words)])


class LineFeatures:
    """Fitted vectorizers: word 1-2-grams and character 2-4-grams (TF-IDF, sublinear) of the
    normalised description, plus hashed vendor, amount and vendor x word tokens."""

    def __init__(self, min_df: int = 1):
        self.words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=min_df, sublinear_tf=True,
                                     token_pattern=r"(?u)\b\w+\b", dtype=np.float64)
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=min_df, sublinear_tf=True,
                                     max_features=150_000, dtype=np.float64)
        self.meta = HashingVectorizer(analyzer=str.split, n_features=2**18, alternate_sign=False, norm="l2")

    def __getstate__(self) -> dict:
        """Pickled without the scoring cache (`_lean`'s analyzers are rebuilt on first use)."""
        return {k: v for k, v in self.__dict__.items() if k != "_lean_state"}

    def fit_transform(self, lines: list[LineInput]) -> sp.csr_matrix:
        texts = [normalize(line.description) for line in lines]
        return sp.hstack([self.words.fit_transform(texts), self.chars.fit_transform(texts),
                          0.7 * self.meta.transform([_meta_tokens(line) for line in lines])], format="csr")

    def transform(self, lines: list[LineInput]) -> sp.csr_matrix:
        if len(lines) <= _LEAN_BATCH:
            return self._lean(lines)
        texts = [normalize(line.description) for line in lines]
        return sp.hstack([self.words.transform(texts), self.chars.transform(texts),
                          0.7 * self.meta.transform([_meta_tokens(line) for line in lines])], format="csr")

    # ---- scoring a few lines at a time -------------------------------------------------------
    def _lean(self, lines: list[LineInput]) -> sp.csr_matrix:
        """`transform` of a few lines without sklearn's per-call validation (which costs more
        than the arithmetic when a page scores one line): the same TF-IDF (sublinear tf, idf,
        l2 per block) and hashing, written out; tests/test_ai_model.py checks it equals
        `transform` on a batch."""
        if getattr(self, "_lean_state", None) is None:
            self._lean_state = [(vec.build_analyzer(), vec.vocabulary_, vec.idf_) for vec in (self.words, self.chars)]
        offsets = (0, len(self.words.vocabulary_), len(self.words.vocabulary_) + len(self.chars.vocabulary_))
        n_meta = self.meta.n_features
        indptr, indices, data = [0], [], []
        for line in lines:
            text = normalize(line.description)
            for (analyze, vocabulary, idf), offset in zip(self._lean_state, offsets):
                counts: dict[int, int] = {}
                for term in analyze(text):
                    j = vocabulary.get(term)
                    if j is not None:
                        counts[j] = counts.get(j, 0) + 1
                _append_normalized(indices, data, {offset + j: (1.0 + math.log(c)) * idf[j] for j, c in counts.items()})
            hashed: dict[int, float] = {}
            for token in _meta_tokens(line).split():
                h = murmurhash3_32(token, seed=0)
                j = (2147483647 - (n_meta - 1)) % n_meta if h == -2147483648 else abs(h) % n_meta
                hashed[offsets[2] + j] = hashed.get(offsets[2] + j, 0.0) + 1.0
            _append_normalized(indices, data, hashed, 0.7)
            indptr.append(len(indices))
        return sp.csr_matrix((np.array(data), np.array(indices, dtype=np.int32), np.array(indptr, dtype=np.int32)),
                             shape=(len(lines), offsets[2] + n_meta))


_LEAN_BATCH = 64


def _append_normalized(indices: list, data: list, values: dict[int, float], scale: float = 1.0) -> None:
    norm = math.sqrt(sum(v * v for v in values.values()))
    if norm:
        for j in sorted(values):
            indices.append(j)
            data.append(scale * values[j] / norm)

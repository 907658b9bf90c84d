"""A bill line as the AI assist takes it, and a labelled one: plain Python, no numpy or
scikit-learn, so the import step (hub/sync/invoices.py scores the lines it brings) and the
pages load without them. The features (hub/ai/features.py) and the model (hub/ai/model.py)
build on these; scikit-learn is imported only where a model is trained, or unpickled to score.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z][a-z0-9]+")


@dataclass(frozen=True)
class LineInput:
    """One bill line as the model takes it. `vendor` is any stable key of the vendor within the
    integration (the hub's vendor id as text); empty when unknown."""

    description: str
    vendor: str = ""
    amount: float = 0.0


def normalize(text: str | None) -> str:
    """Lower case, digits folded to 0 (quantities, job and permit numbers are noise), single spaces."""
    return _SPACE.sub(" ", _DIGITS.sub("0", (text or "").lower())).strip()


def amount_bucket(amount: float | None) -> int:
    """A coarse size class: half-decades of dollars (0 for nothing or credits)."""
    value = abs(float(amount or 0))
    return 0 if value < 1 else 1 + int(2 * math.log10(value))


def input_key(line: LineInput) -> str:
    """The identity of an input for feedback: the same normalised words from the same vendor,
    whatever the numbers in them (a rejected suggestion for it is never auto-applied again)."""
    return f"{line.vendor}|{normalize(line.description)}"


CORRECTION_WEIGHT = 5.0  # a person's correction outweighs one line of history


@dataclass(frozen=True)
class Example:
    line: LineInput
    label: str  # the account (the hub's gl_account id, as text)
    weight: float = 1.0
    correction: bool = False  # from feedback, not from the ledger's history

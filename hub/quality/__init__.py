"""Data-quality checks that guard exports to accounting providers: declared in quality.py,
run with great-expectations (imported lazily) by ge.py, recorded in sync_log."""

from hub.quality.expectations import CheckError, CheckOutcome, run_check
from hub.quality.checks import BY_NAME, CHECKS, Expectation, QualityCheck

__all__ = ["BY_NAME", "CHECKS", "CheckError", "CheckOutcome", "Expectation", "QualityCheck", "run_check"]

"""The line-coding model's parts without a database: the lean single-line feature path equals
sklearn's, a scored model pickles without its caches and answers the same after loading,
vendor-name similarity."""

import pickle
import random

import numpy as np

from emulators import bill_lines
from hub.ai.features import LineFeatures, LineInput, input_key, normalize
from hub.ai.model import Example, LineCoder
from hub.ai.vendor_match import name_similarity, score


def _examples(n=3000, trade="restaurant", seed=3):
    names = bill_lines.chart_accounts(trade)
    rnd, out = random.Random(seed), []
    for _ in range(n):
        v = 1 + rnd.randrange(40)
        made = bill_lines.bill_line(trade, v, rnd)
        out.append(Example(LineInput(made.description, str(v), made.amount),
                           bill_lines.resolve_account(made, {x.casefold(): x for x in names}, names)))
    return out


def test_the_lean_feature_path_equals_sklearns_transform():
    examples = _examples()
    features = LineFeatures()
    features.fit_transform([e.line for e in examples[:2000]])
    unseen = [e.line for e in examples[2000:2100]] + [LineInput("zzz qqq", "", 0), LineInput("", "999", -5)]
    full, lean = features.transform(unseen), features._lean(unseen)  # more than the lean batch size: sklearn's path
    assert full.shape == lean.shape
    assert np.abs((full - lean).toarray()).max() < 1e-12


def test_a_model_pickles_without_its_caches_and_answers_the_same():
    examples = _examples()
    model = LineCoder.fit(examples[:2500])
    lines = [e.line for e in examples[2500:2600]]
    before = [model.predict([line])[0] for line in lines]  # fills the caches
    loaded = pickle.loads(pickle.dumps(model))
    assert "_weights" not in loaded.__dict__ and "_lean_state" not in loaded.features.__dict__
    assert [loaded.predict([line])[0] for line in lines] == before
    assert loaded.predict(lines) == before  # the batch path agrees with the one-line path


def test_inputs_differing_only_in_numbers_are_the_same_input():
    assert normalize("  2x4x8 SPF  Stud x 24 ") == "0x0x0 spf stud x 0"
    assert input_key(LineInput("Permit BP-24-1187", "7", 10)) == input_key(LineInput("permit bp-25-0033", "7", 99))
    assert input_key(LineInput("Permit BP-24-1187", "7", 10)) != input_key(LineInput("Permit BP-24-1187", "8", 10))


def test_vendor_names_alike_after_normalisation():
    assert name_similarity("ACME Lumber Co.", "Acme Lumber Company") == 1.0
    assert score({"display_name": "Acme Lumbr Supply"}, {"display_name": "Acme Lumber Supply Inc"})[0] > 0.85
    assert score({"display_name": "Summit Lumber"}, {"display_name": "Summit Steel"})[0] < 0.5
    assert score({"display_name": "X", "tax_id": "12-3456789"}, {"display_name": "Y", "tax_id": "123456789"}) == (0.99, "same tax id")
    p, reason = score({"display_name": "Acme Lumber", "tax_id": "11-1111111"}, {"display_name": "Acme Lumber", "tax_id": "22-2222222"})
    assert p < 0.5 and "different tax ids" in reason


def test_the_web_app_and_the_import_step_load_no_scikit_learn():
    """scikit-learn, numpy and pandas cost a second and ~100 MB per process: the web workers
    and the import step (which scores lines only when a model exists, by unpickling it) do
    not import them. In a fresh process, so another test's imports cannot hide one."""
    import subprocess
    import sys

    code = ("import sys, hub.web.app, hub.sync.invoices, hub.ai.scoring, hub.ai.feedback; "
            "print(*[m in sys.modules for m in ('sklearn', 'numpy', 'pandas')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]

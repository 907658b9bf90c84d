"""AI assist (issue 14): learned suggestions from the company's own ledger, with calibrated
probabilities, thresholds, feedback and metering. No Dagster here; the nightly training asset
is pipelines/assets/ai.py.

Modules, by what they do:
- features.py, model.py: the line-coding model (bill line -> account): TF-IDF word and
  character n-grams + vendor/amount tokens, a linear SVM, isotonic calibration of its top answer;
- evaluation.py: held-out top-1, precision and coverage per threshold, reliability, baselines;
  the same measures of account mapping and vendor matching on people's answers;
- data.py: the training data (the integration's imported coded bill lines, corrections);
- training.py: train, evaluate, store and meter one integration's model; what is due;
- storage.py: models in PostgreSQL, signed; only what the hub signed is loaded;
- scoring.py: `suggest_for_lines`, and `code_lines`, the hook of the import and export steps, in
  the caller's transaction (the export preview's is rolled back);
- feedback.py: accept / reject / correct; settings.py: per-company preferences and thresholds;
- mapping.py: hub category -> account suggestions; vendor_match.py: hub vendor <-> ledger vendor
  (asked by the vendor export before it creates one: link, hold back as a possible duplicate);
- usage.py: predictions, trainings and CPU seconds per task and month, and their cost;
- external_model.py: the optional external model (an OpenAI-compatible API, through the openai
  SDK) for lines below the low threshold; external_settings.py its settings (key encrypted);
  external_budget.py its per-call metering and the monthly budget, a hard cap.
"""

"""AI assist line coding: accuracy on held-out lines beside two baselines, training time on
100,000 lines, scoring latency per line and memory.

    .venv/bin/python bench/ai_coding.py                 # 100,000 lines per trade (construction, restaurant)
    .venv/bin/python bench/ai_coding.py --lines 20000   # smaller
    .venv/bin/python bench/ai_coding.py --trades construction

Data: the emulators' own generated ledgers (emulators/bill_lines.py through the emulators'
bill generators): the QuickBooks emulator's Bills for `construction` (300 vendors, the full
contractor chart), the Xero emulator's ACCPAY invoices for `restaurant` (300 suppliers, the
full restaurant chart), read from the emulator state (the pull sync's own speed is
bench/sync_throughput.py's subject) until `--lines` coded lines are collected. Each line is
(description, vendor, amount) -> account, as hub/ai/data.py reads them from the hub's tables.

Per trade:
1. held-out evaluation (hub/ai/evaluation.py, a seeded 80/20 split): the model's top-1
   accuracy, precision and coverage at the default auto-apply threshold (0.9) and at each
   threshold, the reliability table (calibration), and in the same run the two baselines:
   the vendor's most frequent account, and rapidfuzz nearest past description;
2. training on all lines (`LineCoder.fit`, what the nightly asset runs): wall and CPU seconds;
3. scoring: 2,000 lines one at a time (`LineCoder.predict([line])`, what an import or a page
   does for one new line), wall time per call, p50 and p99; and one batch of 2,000;
4. peak RSS of this process (VmHWM) after all of it.

The machine the figures come from is shared (two cores, other work running): training runs
`--repeat` times and scoring makes `--repeat` passes; every run is written down with the load
average it saw, and the verdicts are on the best run. The CPU time of each scoring call
(`thread_time`) is recorded beside its wall time: it is what the call costs without waiting
for a core.

Targets (issue 14): precision >= 95% at the default auto-apply threshold with coverage >= 60%,
better than both baselines; training on 100,000 lines < 30 s; scoring p99 < 5 ms per line;
RSS < 500 MB. Writes bench/results/ai_coding.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import RESULTS, log, machine, percentile  # noqa: E402
from hub.ai.evaluation import at_threshold, evaluate  # noqa: E402
from hub.ai.features import LineInput  # noqa: E402
from hub.ai.model import Example, LineCoder  # noqa: E402
from hub.ai.settings import DEFAULT_HIGH  # noqa: E402

TARGETS = {"precision": 0.95, "coverage": 0.60, "train_seconds": 30.0, "p99_ms": 5.0, "rss_mb": 500.0}


def quickbooks_lines(n: int, vendors: int = 300) -> list[Example]:
    from emulators.quickbooks import _CHART, create_emulator

    emulator = create_emulator(vendors=vendors, bills=n, invoices=0, accounts=len(_CHART), seed=11, trade="construction")
    out: list[Example] = []
    for i in range(1, n + 1):
        bill = emulator.state.tables["Bill"].get(i)
        for line in bill["Line"]:
            ref = (line.get("AccountBasedExpenseLineDetail") or {}).get("AccountRef")
            if ref:
                out.append(Example(LineInput(line["Description"], bill["VendorRef"]["value"], line["Amount"]), ref["value"]))
        if len(out) >= n:
            break
    return out[:n]


def xero_lines(n: int, contacts: int = 300) -> list[Example]:
    from emulators.xero import _CHART, create_emulator

    emulator = create_emulator(contacts=contacts, invoices=int(n / 0.7 / 2) + 1000, accounts=len(_CHART), seed=11, trade="restaurant")
    out: list[Example] = []
    for inv in emulator.state.invoices.values():
        if inv.Type != "ACCPAY":
            continue
        for desc, _qty, _unit, code, _tt, _tax, amount in inv.LineItems:
            if code:
                out.append(Example(LineInput(desc, inv.ContactID, amount), code))
    return out[:n]


def vm_hwm_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_trade(trade: str, n: int, repeat: int) -> dict:
    log(f"{trade}: generating {n:,} coded lines")
    examples = quickbooks_lines(n) if trade == "construction" else xero_lines(n)
    accounts = len({e.label for e in examples})
    log(f"{trade}: {len(examples):,} lines, {accounts} accounts, {len({e.line.vendor for e in examples})} vendors")

    started = time.perf_counter()
    ev = evaluate(examples, baselines=True)
    log(f"{trade}: held-out evaluation in {time.perf_counter() - started:.1f} s")
    model_row = at_threshold(ev.table, DEFAULT_HIGH)
    baselines = {name: {"top1": b["top1"], "at_default": at_threshold(b["thresholds"], DEFAULT_HIGH), "thresholds": b["thresholds"]}
                 for name, b in ev.baselines.items()}

    trainings = []
    for run in range(repeat):  # the machine is shared: every run is kept, the verdict is on the best
        wall, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        model = LineCoder.fit(examples)
        trainings.append({"wall_seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, "load_average": load})
        log(f"{trade}: trained on {len(examples):,} lines in {trainings[-1]['wall_seconds']:.1f} s wall, "
            f"{trainings[-1]['cpu_seconds']:.1f} s CPU (load average {load:.1f})")
    train_wall, train_cpu = min(t["wall_seconds"] for t in trainings), min(t["cpu_seconds"] for t in trainings)

    sample = [e.line for e in examples[:2000]]
    model.predict(sample[:10])  # warm
    passes = []
    for run in range(repeat):
        times, cpu_times, load = [], [], os.getloadavg()[0]
        for line in sample:
            t, c = time.perf_counter(), time.thread_time()
            model.predict([line])
            times.append((time.perf_counter() - t) * 1000)
            cpu_times.append((time.thread_time() - c) * 1000)
        times.sort()
        cpu_times.sort()
        passes.append({"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99), "cpu_p50_ms": percentile(cpu_times, 50),
                       "cpu_p99_ms": percentile(cpu_times, 99), "load_average": load})
        log(f"{trade}: scoring one line p50 {passes[-1]['p50_ms']:.2f} ms, p99 {passes[-1]['p99_ms']:.2f} ms "
            f"(CPU p99 {passes[-1]['cpu_p99_ms']:.2f} ms; load average {load:.1f})")
    best = min(passes, key=lambda p: p["p99_ms"])
    t = time.perf_counter()
    model.predict(sample)
    batch_ms = (time.perf_counter() - t) * 1000 / len(sample)
    return {
        "trade": trade, "lines": len(examples), "accounts": accounts, "train_size": ev.train_size, "test_size": ev.test_size,
        "model": {"top1": ev.top1, "at_default": model_row, "thresholds": ev.table, "calibration": ev.calibration},
        "baselines": baselines,
        "training": {"lines": len(examples), "wall_seconds": train_wall, "cpu_seconds": train_cpu, "runs": trainings},
        "scoring": {"single_line_p50_ms": best["p50_ms"], "single_line_p99_ms": best["p99_ms"], "batch_ms_per_line": batch_ms,
                    "single_line_cpu_p50_ms": best["cpu_p50_ms"], "single_line_cpu_p99_ms": best["cpu_p99_ms"],
                    "load_average": best["load_average"], "passes": passes},
    }


def verdicts(r: dict) -> dict:
    m = r["model"]["at_default"]
    return {
        "precision >= 95% at 0.9": (m.get("precision") or 0) >= TARGETS["precision"],
        "coverage >= 60% at 0.9": m.get("coverage", 0) >= TARGETS["coverage"],
        "beats vendor baseline (top-1)": r["model"]["top1"] > r["baselines"]["vendor"]["top1"],
        "beats fuzzy baseline (top-1)": r["model"]["top1"] > r["baselines"]["fuzzy"]["top1"],
        "training < 30 s": r["training"]["wall_seconds"] < TARGETS["train_seconds"],
        "scoring p99 < 5 ms": r["scoring"]["single_line_p99_ms"] < TARGETS["p99_ms"],
    }


def markdown(results: list[dict], rss: float, env: dict) -> str:  # noqa: C901
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    out = ["# AI assist: line coding (bench/ai_coding.py)", "",
           f"Machine: {env.get('cpu', '?')}, {env.get('nproc', '?')} cores. Peak RSS of the whole run: {rss:.0f} MB "
           f"(target < {TARGETS['rss_mb']:.0f} MB).", ""]
    for r in results:
        m, v, fz = r["model"], r["baselines"]["vendor"], r["baselines"]["fuzzy"]
        out += [f"## {r['trade']}: {r['lines']:,} lines, {r['accounts']} accounts (held out: {r['test_size']:,})", "",
                "| | top-1 | precision at 0.9 | coverage at 0.9 |", "|---|---|---|---|",
                f"| model | {pct(m['top1'])} | {pct(m['at_default'].get('precision'))} | {pct(m['at_default'].get('coverage'))} |",
                f"| vendor's most frequent account | {pct(v['top1'])} | {pct(v['at_default'].get('precision'))} | {pct(v['at_default'].get('coverage'))} |",
                f"| rapidfuzz nearest description | {pct(fz['top1'])} | {pct(fz['at_default'].get('precision'))} | {pct(fz['at_default'].get('coverage'))} |",
                "", f"Calibration: expected calibration error {m['calibration']['ece']:.3f}.", "",
                "| threshold | precision | coverage |", "|---|---|---|",
                *[f"| {row['threshold']:.2f} | {pct(row['precision'])} | {pct(row['coverage'])} |" for row in m["thresholds"]], "",
                f"Training on {r['training']['lines']:,} lines (best of {len(r['training']['runs'])}; every run: "
                + ", ".join(f"{t['wall_seconds']:.1f} s at load {t['load_average']:.1f}" for t in r["training"]["runs"])
                + f"): {r['training']['wall_seconds']:.1f} s wall, {r['training']['cpu_seconds']:.1f} s CPU. "
                f"Scoring one line at a time (best pass of {len(r['scoring']['passes'])}; p99 of every pass: "
                + ", ".join(f"{p['p99_ms']:.2f} ms at load {p['load_average']:.1f}" for p in r["scoring"]["passes"])
                + f"): p50 {r['scoring']['single_line_p50_ms']:.2f} ms, "
                f"p99 {r['scoring']['single_line_p99_ms']:.2f} ms (its CPU time: p50 {r['scoring']['single_line_cpu_p50_ms']:.2f} ms, "
                f"p99 {r['scoring']['single_line_cpu_p99_ms']:.2f} ms); in a batch {r['scoring']['batch_ms_per_line']:.3f} ms per line. "
                f"Load average during the best pass: {r['scoring']['load_average']:.1f} on {env.get('nproc', '?')} cores "
                "(the machine is shared: wall-time tails include waiting for a core).", "",
                "Targets: " + ", ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in verdicts(r).items()) + ".", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--trades", default="construction,restaurant")
    parser.add_argument("--repeat", type=int, default=3, help="training runs and scoring passes (the best counts; all are kept)")
    args = parser.parse_args()
    results = [run_trade(trade, args.lines, args.repeat) for trade in args.trades.split(",")]
    rss = vm_hwm_mb()
    env = machine()
    RESULTS.mkdir(exist_ok=True)
    payload = {"targets": TARGETS, "peak_rss_mb": rss, "machine": env, "results": results,
               "verdicts": {r["trade"]: verdicts(r) for r in results}}
    (RESULTS / "ai_coding.json").write_text(json.dumps(payload, indent=2, default=str))
    text = markdown(results, rss, env)
    (RESULTS / "ai_coding.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

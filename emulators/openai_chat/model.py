"""The emulator's stand-in "model": reads a chat's messages and answers deterministically.

What it understands: a user message holding a JSON object with a chart of accounts and bill
lines, the shape the hub sends (hub/ai/external_model.py; any other client may send it too):

    {"chart": [{"id": "17", "name": "Fuel", "code": "510", ...}, ...],
     "lines": [{"line": 1, "description": "diesel 40 gal", "vendor": "...", "amount": 182.5}, ...]}

and answers, as JSON, one account per line:

    {"answers": [{"line": 1, "account_id": "17", "confidence": 0.85}, ...]}

How it picks (a documented rule, not a learnt model): the description's words (lower case,
plurals folded: "bolts" -> "bolt") are compared with each account's name words; a word both
have scores 3. A small trade lexicon (`LEXICON`) adds the words an account for that kind of
purchase is usually called ("diesel" -> fuel, "romex" -> electrical, "mozzarella" -> dairy,
"dumpster" -> dump, disposal); each lexicon word the account's name has scores 2. The
vendor's name is a hint only: its words and their lexicon words score 1 each (a fuel
company's invoice for a dumpster is still a dumpster). Character-trigram overlap of
description and account name (0..1) breaks ties, then the chart's order. With no word in common and trigram overlap
under 0.15 the answer is `null` ("none fits"), as the prompt allows. Confidence: 0.55 +
0.08 per point of word score, at most 0.95; 0.3 for a trigram-only guess.

Anything else (no such JSON object): with `response_format` json_object or json_schema a
JSON object `{"answer": ..., "words": n}` describing what was read, else one sentence of text.

Token counts (`count_tokens`), documented approximation of OpenAI's tokenizers (not
tiktoken): a text is ceil(UTF-8 bytes / 4) tokens, at least 1; a chat's prompt is 4 tokens
per message plus its content and role, plus 3 priming the reply (the counting recipe of
OpenAI's cookbook for chat models). Every byte-level BPE token covers at least one byte, so
UTF-8 bytes bound any real count from above; the hub reserves budget on that bound.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

STOPWORDS = frozenset({"and", "or", "the", "of", "for", "to", "a", "an", "in", "on", "w", "x", "per", "cost", "costs",
                       "expense", "expenses", "job", "other", "general", "misc", "s"})

# word of a bill line -> words an account for that purchase is usually called (singular forms)
_LEXICON_GROUPS: dict[tuple[str, ...], tuple[str, ...]] = {
    # construction
    ("stud", "plywood", "plywd", "osb", "lvl", "joist", "lumber", "fir", "spf", "cdx", "sheathing", "cedar", "tji", "2x4",
     "2x6", "2x8", "2x10", "2x12", "4x4", "6x6"): ("lumber", "framing", "material"),
    ("concrete", "conc", "ready", "mix", "psi", "quikrete", "gravel", "aggregate", "yd3", "cy", "slurry"):
        ("concrete", "aggregate", "material"),
    ("rebar", "mesh", "tie"): ("concrete", "rebar", "material"),
    ("drywall", "drywl", "gypsum", "compound", "bead"): ("drywall", "material"),
    ("romex", "conduit", "emt", "gfci", "breaker", "thhn", "panel", "wire", "recept", "receptacle", "led", "ser", "nm"):
        ("electrical", "material"),
    ("pex", "pvc", "dwv", "copper", "abs", "valve", "toilet", "flange", "cleanout", "heater", "ftgs", "fitting"):
        ("plumbing", "material"),
    ("nail", "screw", "bolt", "hanger", "adhesive", "anchor", "simpson", "washer", "hurricane"): ("hardware", "material"),
    ("excavator", "excav", "skid", "steer", "scissor", "boom", "compactor", "mixer", "telehandler", "rntl", "rental",
     "fencing"): ("equipment", "rental"),
    ("labor", "labour", "lbr", "subcontract", "subk", "install", "rough", "flatwork", "draw", "progress", "grading"):
        ("subcontractor", "subcontract", "labor"),
    ("permit", "prmt", "inspection", "insp", "license", "licence", "review"): ("permit", "license"),
    ("dumpster", "dump", "debris", "haul", "washout", "roll"): ("dump", "disposal"),
    ("delivery", "deliv", "freight", "shipping", "handling", "pickup"): ("freight", "delivery"),
    ("diesel", "gasoline", "unleaded", "gas", "fuel", "gallon", "gal"): ("fuel",),
    ("brake", "repair", "rpr", "oil", "filter", "tire", "hydraulic", "maintenance", "compressor", "thermostat", "pilot",
     "dishwasher", "hvac", "replace", "repl"): ("repair", "maintenance"),
    ("toner", "postage", "printing", "copies", "blueprint", "quickbooks", "stationery"): ("office",),
    ("hat", "glasses", "vest", "harness", "aid", "glove", "plug", "safety"): ("safety",),
    ("drill", "saw", "level", "blade", "wheelbarrow", "bit", "tape", "tool"): ("tool", "equipment"),
    ("electric", "sewer", "power", "natural", "utility"): ("utility",),
    ("lease", "rent", "cam", "container"): ("rent", "lease"),
    ("premium", "prem", "policy", "liability", "comp", "insurance", "builders"): ("insurance",),
    # restaurant
    ("romaine", "onion", "tomato", "tom", "avocado", "lemon", "green", "potato", "pot", "cilantro", "jalapeno", "garlic",
     "lettuce", "produce"): ("produce", "food"),
    ("cream", "crm", "milk", "egg", "butter", "mozzarella", "mozz", "parmesan", "cheddar", "cheese", "sour", "dairy"):
        ("dairy", "egg", "food"),
    ("chicken", "chkn", "beef", "pork", "ribeye", "salmon", "bacon", "shrimp", "wing", "meat", "fish", "seafood"):
        ("meat", "seafood", "food"),
    ("flour", "rice", "sugar", "pasta", "penne", "spice", "bean", "canned", "fryer"): ("dry", "good", "food"),
    ("coke", "syrup", "coffee", "beer", "keg", "wine", "water", "tea", "lemonade", "soda", "beverage"): ("beverage",),
    ("napkin", "deli", "towel", "straw", "foil", "cutlery", "clamshell", "cont", "disposable", "paper"):
        ("paper", "disposable"),
    ("linen", "apron", "uniform", "coat", "mat", "laundering"): ("linen", "uniform"),
    ("sanitizer", "degreaser", "detergent", "rinse", "cleaner", "quat", "hood", "cleaning"): ("cleaning",),
    ("pest", "rodent", "bait"): ("pest", "control"),
    ("pan", "knife", "ladle", "tong", "board", "bottle", "smallware"): ("smallware",),
    ("internet", "phone", "fiber", "telephone"): ("telephone", "internet"),
    ("software", "subscription", "subscr", "app", "pos", "ordering"): ("office", "software"),
    ("bookkeeping", "payroll", "cpa", "tax", "accounting"): ("accounting", "consulting"),
    ("menu", "ad", "flyer", "yelp", "social", "advertising", "marketing"): ("advertising",),
    ("merchant", "processing", "card", "bank"): ("bank", "fee"),
}
LEXICON: dict[str, tuple[str, ...]] = {word: topics for words, topics in _LEXICON_GROUPS.items() for word in words}

_WORD = re.compile(r"[a-z0-9]+")
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def count_tokens(text: str) -> int:
    """A text's tokens: ceil(UTF-8 bytes / 4), at least 1 (see the module docstring)."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


def message_text(message: dict[str, Any]) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(4 + count_tokens(message_text(m)) + count_tokens(str(m.get("role", ""))) for m in messages) + 3


def _fold(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> set[str]:
    return {_fold(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and not w.isdigit()} - STOPWORDS


def _trigrams(text: str) -> set[str]:
    letters = " " + " ".join(_WORD.findall(text.lower())) + " "
    return {letters[i:i + 3] for i in range(len(letters) - 2)}


def _similarity(a: str, b: str) -> float:
    x, y = _trigrams(a), _trigrams(b)
    return len(x & y) / len(x | y) if x and y else 0.0


def pick_account(line: dict[str, Any], chart: list[dict[str, Any]]) -> tuple[Any, float]:
    """(account id or None, confidence) for one line (see the module docstring)."""
    description = str(line.get("description") or "")
    said, by = words(description), words(str(line.get("vendor") or ""))
    topics = {t for w in said for t in LEXICON.get(w, ())}
    hints = by | {t for w in by for t in LEXICON.get(w, ())}
    best: tuple[float, float, int] | None = None
    chosen = None
    for position, account in enumerate(chart):
        name = str(account.get("name") or "")
        called = words(name)
        score = 3 * len(said & called) + 2 * len(topics & called) + len(hints & called)
        key = (score, _similarity(description, name), -position)
        if best is None or key > best:
            best, chosen = key, account
    if chosen is None or best is None:
        return None, 0.0
    score, similarity, _ = best
    if score == 0:
        return (chosen.get("id"), 0.3) if similarity >= 0.15 else (None, 0.0)
    return chosen.get("id"), round(min(0.95, 0.55 + 0.08 * score), 2)


def _coding_request(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        found = _JSON_OBJECT.search(message_text(message))
        if not found:
            continue
        try:
            data = json.loads(found.group(0))
        except ValueError:
            continue
        chart = data.get("chart", data.get("accounts")) if isinstance(data, dict) else None
        if isinstance(chart, list) and isinstance(data.get("lines"), list):
            return {"chart": [a for a in chart if isinstance(a, dict)], "lines": [x for x in data["lines"] if isinstance(x, dict)]}
    return None


def answer(messages: list[dict[str, Any]], wants_json: bool) -> str:
    """The assistant's reply to `messages` (see the module docstring)."""
    request = _coding_request(messages)
    if request is not None:
        answers = []
        for n, line in enumerate(request["lines"], start=1):
            account_id, confidence = pick_account(line, request["chart"])
            answers.append({"line": line.get("line", n), "account_id": account_id, "confidence": confidence})
        return json.dumps({"answers": answers}, separators=(",", ":"))
    said = sum(len(_WORD.findall(message_text(m).lower())) for m in messages)
    if wants_json:
        return json.dumps({"answer": "no chart and lines to code were given", "words": said}, separators=(",", ":"))
    return (f"This is the Integrations Hub's OpenAI-compatible emulator: I read {said} words. Send a JSON object with "
            "\"chart\" and \"lines\" to have bill lines coded to accounts.")

"""Realistic vendor bill lines, coded to ledger accounts: the labelled history the hub's AI
assist learns from (hub/ai) and is measured on (bench/ai_coding.py).

A bill line here is what a bookkeeper sees: a description in the vendor's own words (item
codes, abbreviations, capitals, the odd typo, a job reference), an amount in the range such a
purchase costs, and the account someone coded it to. Two trades: `construction` (the
QuickBooks demo company: lumber, concrete, rebar, equipment rental, subcontract labour,
permits, ...) and `restaurant` (the Xero demo organisation: produce, dairy, meat, paper goods,
linen, repairs, ...).

What makes it realistic rather than a lookup table:
- every vendor has a *profile* (a lumber yard sells mostly lumber, some hardware, delivery;
  an equipment rental house adds fuel surcharges and damage waivers) and a *style* (which of
  the phrasings it prints, capitals, item codes, abbreviations, typo rate), both fixed by the
  vendor's key, so a vendor words the same thing the same way bill after bill;
- some categories are coded inconsistently in the history, as real books are: small tools
  now to tools, now to materials; a lumber yard's delivery charge to freight by one vendor's
  habit and to materials by another's; and a small share of plain miscoding;
- an account is named by preference (`accounts`): the first one the chart has wins, so a
  small chart folds produce, dairy and meat into "Cost of Goods Sold" and a fuller one
  keeps them apart. `resolve_account` does that for an emulator.

Everything is a pure function of (trade, vendor key, random source): the emulators pass a
`random.Random` seeded from (seed, bill, line), so the same seed gives the same lines.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

TRADES = ("construction", "restaurant")
NOISE = 0.025  # share of lines coded to an unrelated expense account (plain miscoding)
TYPO = 0.05  # share of lines (of a careless vendor: twice that) with one misspelt word
GENERIC = 0.10  # share of lines worded generically ("materials per quote", "invoice 4471")
GENERIC_PHRASES = ("materials per quote {n}", "misc", "services rendered {month}", "invoice {n}", "see attached",
                   "order #{n}", "balance due", "account {month} statement", "supplies", "per contract {job}")


@dataclass(frozen=True)
class Category:
    """What a line buys: the accounts it is coded to (by preference), how much it costs, how
    vendors word it, and, for an inconsistently coded category, the other accounts some
    lines went to with their share."""

    key: str
    accounts: tuple[str, ...]
    low: float
    high: float
    phrases: tuple[str, ...]
    alternatives: tuple[tuple[tuple[str, ...], float], ...] = ()


def _c(key, accounts, low, high, phrases, alternatives=()):
    return Category(key, tuple(accounts), low, high, tuple(phrases), tuple((tuple(a), p) for a, p in alternatives))


# {n} a number, {dim} a lumber size, {len} a length, {job} a job reference, {yd} cubic yards,
# {hrs} hours, {wk} a rental period, {permit} a permit number, {lb} pounds, {cs} cases
CONSTRUCTION = (
    _c("lumber", ("Lumber & Framing", "Job Materials"), 180, 7500, (
        "{dim}x{len} SPF stud", "{dim}x{len} #2 Doug Fir", "3/4 CDX plywood 4x8", "7/16 OSB sheathing 4x8",
        "LVL beam 1-3/4 x 11-7/8 x {len}", "pressure treated {dim}x{len}", "framing lumber package - {job}",
        "{dim}x{len} KD hem fir", "engineered I-joist TJI 210 {len}ft", "cedar fence boards 1x6x6")),
    _c("concrete", ("Concrete & Aggregates", "Job Materials"), 400, 9000, (
        "{yd} CY 3000 PSI ready mix", "ready-mix concrete {yd} yds 4000psi", "concrete delivered {job}",
        "{yd} yd3 concrete 3500 PSI w/ fiber", "pump truck + {yd} CY concrete", "gravel base 3/4 minus {yd} tons",
        "Quikrete 80lb bags x {n}", "short load fee + {yd} CY")),
    _c("rebar", ("Concrete & Aggregates", "Job Materials"), 150, 4200, (
        "#4 rebar 20' grade 60 x {n}", "#5 rebar 20ft x {n} pcs", "rebar fabrication & bending {job}",
        "welded wire mesh 6x6 W1.4", "rebar chairs and tie wire", "#3 rebar 20' x {n}")),
    _c("drywall", ("Job Materials",), 120, 3800, (
        "1/2 drywall 4x12 x {n} sheets", "5/8 type X gypsum board x {n}", "joint compound 4.5 gal + tape",
        "drywall screws 1-5/8 25lb", "metal corner bead 8ft x {n}")),
    _c("electrical", ("Electrical Materials", "Job Materials"), 60, 5200, (
        "12/2 Romex NM-B 250ft x {n}", "200A main panel", "EMT conduit 3/4 x 10ft x {n}", "20A GFCI receptacles x {n}",
        "LED recessed cans 6in x {n}", "THHN wire #10 500ft", "breakers 20A single pole x {n}", "service entrance cable SER 2/0")),
    _c("plumbing", ("Plumbing Materials", "Job Materials"), 40, 4600, (
        "PEX-A 1/2 x 100ft x {n}", "3in PVC DWV pipe 10ft x {n}", "copper fittings assortment", "50 gal water heater",
        "ABS cleanout + fittings", "shutoff valves 1/2 x {n}", "toilet flange and wax rings x {n}")),
    _c("hardware", ("Job Materials",), 15, 900, (
        "16d framing nails 50lb box", "Simpson strong-tie hangers LUS26 x {n}", "anchor bolts 1/2x10 x {n}",
        "construction adhesive x {n} tubes", "deck screws 3in 5lb", "lag bolts + washers", "hurricane ties H2.5A x {n}")),
    _c("equipment_rental", ("Equipment Rental",), 150, 6500, (
        "mini excavator rental {wk}", "skid steer rental {wk}", "scissor lift 19ft {wk}", "boom lift 45ft rental {wk}",
        "plate compactor rental {wk}", "concrete mixer rental {wk}", "temporary fencing rental {wk}",
        "portable toilet rental {wk}", "generator 6500W rental {wk}", "telehandler rental {wk}")),
    _c("subcontract", ("Subcontractors",), 800, 28000, (
        "framing labor {job} progress billing", "electrical rough-in labor {job}", "plumbing rough-in {job}",
        "drywall hang & finish labor {job}", "roofing install {job}", "concrete flatwork labor {job}",
        "HVAC install labor {job}", "painting subcontract {job} draw #{n}", "excavation & grading {job}",
        "subcontract labor {hrs} hrs {job}")),
    _c("permits", ("Permits & Licenses",), 45, 3200, (
        "building permit {permit}", "plan review fee {permit}", "electrical permit {permit}", "plumbing permit fee {permit}",
        "inspection fee re-inspect {permit}", "right-of-way permit {permit}", "contractor license renewal")),
    _c("fuel", ("Fuel",), 35, 900, (
        "diesel {n} gal", "unleaded fuel fleet card", "off-road diesel delivery {n} gal", "fuel surcharge",
        "gasoline truck #{n}")),
    _c("small_tools", ("Small Tools & Equipment",), 25, 1400, (
        "cordless drill kit 20V", "circular saw 7-1/4", "laser level", "tool bags + tape measures", "saw blades x {n}",
        "hammer drill SDS bits", "wheelbarrow"), alternatives=[(("Job Materials",), 0.35)]),
    _c("safety", ("Safety Supplies", "Small Tools & Equipment"), 20, 700, (
        "hard hats x {n}", "safety glasses box", "hi-vis vests x {n}", "fall protection harness", "first aid kit refill",
        "nitrile gloves {cs} cs", "ear plugs 200 pr"), alternatives=[(("Small Tools & Equipment", "Job Materials"), 0.3)]),
    _c("dump", ("Dump & Disposal Fees",), 60, 1800, (
        "30 yd roll-off dumpster {job}", "dump fee {n} tons C&D", "debris haul away {job}", "dumpster swap + overweight",
        "concrete washout disposal")),
    _c("freight", ("Freight & Delivery",), 25, 450, (
        "delivery charge", "freight", "boom truck delivery", "pickup & delivery", "fuel surcharge on delivery",
        "will call handling fee"), alternatives=[(("Job Materials",), 0.25)]),
    _c("repairs", ("Repair & Maintenance",), 60, 3500, (
        "truck #{n} brake service", "skid steer hydraulic repair", "oil change + filters truck #{n}",
        "generator repair", "tire replacement work truck", "damage waiver repair charge")),
    _c("office", ("Office Expenses",), 12, 600, (
        "printer toner + paper", "office supplies", "plan copies {n} sets", "QuickBooks subscription",
        "postage", "blueprint printing {job}")),
    _c("utilities", ("Utilities",), 50, 1500, (
        "electric service yard", "water/sewer service", "temp power {job}", "natural gas service shop")),
    _c("rent", ("Rent or Lease",), 400, 6500, (
        "yard rent {month}", "shop lease {month}", "storage container rental {month}", "office rent {month}")),
    _c("insurance", ("Insurance",), 300, 9000, (
        "general liability premium", "builders risk policy {job}", "commercial auto premium", "workers comp installment")),
)

RESTAURANT = (
    _c("produce", ("Food Cost - Produce", "Cost of Goods Sold"), 40, 1800, (
        "romaine hearts {cs} cs", "yellow onions 50lb", "roma tomatoes 25lb", "avocados hass 48ct", "lemons 115ct",
        "mixed greens 3lb x {n}", "russet potatoes 50lb", "cilantro {n} bunch", "jalapenos 10lb", "garlic peeled 5lb")),
    _c("dairy", ("Food Cost - Dairy & Eggs", "Cost of Goods Sold"), 30, 1200, (
        "heavy cream qt x {n}", "whole milk gal x {n}", "large eggs 15dz", "butter unsalted 36ct", "shredded mozzarella 4x5lb",
        "parmesan wheel", "cheddar block 10lb", "sour cream 5lb")),
    _c("meat", ("Food Cost - Meat & Seafood", "Cost of Goods Sold"), 90, 4200, (
        "chicken breast bnls {lb} lb", "ground beef 80/20 {lb} lb", "pork shoulder {lb}lb", "ribeye choice {lb} lb",
        "salmon fillet fresh {lb} lb", "bacon sliced 15lb", "shrimp 16/20 {n} bags", "chicken wings jumbo {lb}lb")),
    _c("dry_goods", ("Dry Goods", "Cost of Goods Sold"), 25, 900, (
        "AP flour 50lb", "rice long grain 50lb", "fryer oil 35lb jib x {n}", "canned tomatoes #10 x {n}",
        "sugar 25lb", "pasta penne 20lb", "spices assortment", "black beans #10 cs")),
    _c("beverage", ("Beverage Cost", "Cost of Goods Sold"), 40, 2600, (
        "coke syrup BIB 5gal", "coffee beans 5lb x {n}", "draft beer keg 1/2bbl", "house wine {cs} cs",
        "bottled water {cs} cs", "iced tea bags", "lemonade concentrate")),
    _c("paper", ("Paper Goods & Disposables", "General Expenses"), 30, 900, (
        "to-go containers 9x9 clamshell", "napkins dinner 3000ct", "deli containers 32oz", "paper towels {cs} cs",
        "plastic gloves L {cs} cs", "straws wrapped", "foil sheets 12x10", "cutlery kits 500ct")),
    _c("linen", ("Linen & Uniforms", "Cleaning"), 40, 800, (
        "linen service weekly", "bar towels {n} dz", "chef coats laundering", "aprons + napkin rental", "table linen rental",
        "mat service")),
    _c("cleaning", ("Cleaning",), 25, 700, (
        "sanitizer quat 4x1gal", "degreaser", "dish machine detergent 5gal", "rinse aid", "hood cleaning service",
        "floor cleaner cs")),
    _c("repairs", ("Repairs and Maintenance",), 80, 3800, (
        "walk-in cooler repair compressor", "fryer thermostat repair", "dishwasher service call", "ice machine repair",
        "plumber grease trap", "HVAC service call", "oven pilot assembly replace"), alternatives=[(("Cleaning",), 0.15)]),
    _c("pest", ("Pest Control", "Repairs and Maintenance"), 60, 300, (
        "pest control monthly service", "rodent bait stations", "pest service {month}")),
    _c("smallwares", ("Smallwares", "General Expenses"), 20, 900, (
        "sheet pans half size x {n}", "chef knife 10in", "hotel pans x {n}", "ladles + tongs", "cutting boards color coded",
        "squeeze bottles {n} pk"), alternatives=[(("Repairs and Maintenance",), 0.2)]),
    _c("telephone", ("Telephone & Internet",), 60, 400, (
        "internet service {month}", "phone line {month}", "business fiber 300mb")),
    _c("software", ("Office Expenses",), 30, 600, (
        "POS software subscription {month}", "online ordering fee {month}", "scheduling app subscription", "office supplies")),
    _c("accounting", ("Consulting & Accounting",), 150, 2500, (
        "bookkeeping {month}", "payroll processing fee", "CPA tax prep")),
    _c("advertising", ("Advertising",), 50, 2000, (
        "menu printing", "social media ads {month}", "flyers + door hangers", "Yelp ads {month}")),
    _c("rent", ("Rent",), 2500, 12000, ("rent {month}", "CAM charges {month}", "lease payment {month}")),
    _c("insurance", ("Insurance",), 200, 5000, ("liquor liability premium", "general liability policy", "workers comp premium")),
    _c("bank_fees", ("Bank Fees",), 15, 900, ("merchant processing fees {month}", "card processing {month}", "bank service charge")),
)

CATALOG: dict[str, tuple[Category, ...]] = {"construction": CONSTRUCTION, "restaurant": RESTAURANT}
_BY_KEY = {trade: {c.key: c for c in cats} for trade, cats in CATALOG.items()}

# a vendor's mix of categories (weights); each vendor has one, fixed by its key
PROFILES: dict[str, tuple[dict[str, int], ...]] = {
    "construction": (
        {"lumber": 60, "hardware": 18, "freight": 12, "drywall": 10},  # lumber yard
        {"concrete": 80, "rebar": 10, "freight": 10},  # ready-mix plant
        {"rebar": 75, "hardware": 10, "freight": 15},  # rebar fabricator
        {"electrical": 85, "freight": 8, "safety": 7},  # electrical supply house
        {"plumbing": 85, "freight": 10, "small_tools": 5},  # plumbing supply
        {"equipment_rental": 75, "fuel": 10, "repairs": 5, "freight": 10},  # equipment rental house
        {"subcontract": 92, "hardware": 8},  # subcontractor
        {"subcontract": 95, "dump": 5},  # another subcontractor
        {"permits": 100},  # city / county
        {"dump": 90, "freight": 10},  # waste hauler
        {"hardware": 25, "small_tools": 25, "lumber": 12, "safety": 12, "electrical": 8, "plumbing": 8, "office": 10},  # home centre
        {"fuel": 85, "repairs": 15},  # fuel and fleet
        {"repairs": 80, "small_tools": 20},  # repair shop
        {"office": 70, "small_tools": 10, "utilities": 20},  # office and services
        {"rent": 70, "utilities": 30},  # landlord
        {"insurance": 100},  # insurance broker
        {"drywall": 60, "hardware": 20, "freight": 20},  # drywall supplier
    ),
    "restaurant": (
        {"produce": 80, "dairy": 10, "dry_goods": 10},  # produce house
        {"dairy": 75, "produce": 10, "beverage": 15},  # dairy
        {"meat": 85, "dairy": 5, "paper": 10},  # butcher / seafood
        {"produce": 25, "meat": 20, "dairy": 15, "dry_goods": 20, "paper": 10, "cleaning": 5, "beverage": 5},  # broadline distributor
        {"beverage": 90, "dry_goods": 10},  # beverage distributor
        {"paper": 70, "cleaning": 20, "smallwares": 10},  # paper and janitorial
        {"linen": 90, "cleaning": 10},  # linen service
        {"repairs": 85, "smallwares": 15},  # kitchen service company
        {"pest": 100},  # pest control
        {"smallwares": 60, "paper": 25, "repairs": 15},  # restaurant supply store
        {"telephone": 60, "software": 40},  # telecom / software
        {"accounting": 100},  # bookkeeper
        {"advertising": 100},  # marketing
        {"rent": 100},  # landlord
        {"insurance": 100},  # insurer
        {"bank_fees": 100},  # card processor
    ),
}

# what an invoicing system prints instead of the word
ABBREVIATIONS = {
    "pressure treated": "PT", "plywood": "PLYWD", "concrete": "CONC", "delivery": "DELIV", "rental": "RNTL",
    "labor": "LBR", "subcontract": "SUBK", "receptacles": "RECEPT", "assortment": "ASST", "service": "SVC",
    "repair": "RPR", "fittings": "FTGS", "boneless": "BNLS", "chicken": "CHKN", "containers": "CONT", "tomatoes": "TOM",
    "potatoes": "POT", "heavy cream": "HVY CRM", "mozzarella": "MOZZ", "permit": "PRMT", "inspection": "INSP",
    "excavator": "EXCAV", "generator": "GEN", "premium": "PREM", "subscription": "SUBSCR", "replacement": "REPL",
    "installment": "INSTLMT", "monthly": "MTHLY", "weekly": "WKLY", "drywall": "DRYWL", "galvanized": "GALV",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STREETS = ("Maple St", "Oak Ridge", "Lakeview", "Cedar Ct", "Hillside", "Elm Ave", "Harbor Pt", "Summit Dr")


@dataclass(frozen=True)
class VendorStyle:
    """How one vendor writes and what it sells: fixed by its key."""

    profile: dict[str, int]
    phrase_picks: int  # seeds which 2-3 phrasings of a category this vendor prints
    upper: bool  # an ERP that prints capitals
    item_codes: bool  # "SKU 48213 - ..."
    abbreviates: bool
    careless: bool  # twice the typos
    british: bool  # "labour"
    habits: int  # seeds this vendor's coding habit on inconsistently coded categories


def _mix(*parts: int) -> int:
    """A stable 64-bit hash of small integers (the same on every machine, unlike hash())."""
    z = 0x2545F4914F6CDD1D
    for p in parts:
        z = (z ^ (p + 0x9E3779B97F4A7C15 + (z << 6) + (z >> 2))) & ((1 << 64) - 1)
        z = (z * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
        z ^= z >> 31
    return z


@functools.lru_cache(maxsize=4096)
def vendor_style(trade: str, vendor_key: int) -> VendorStyle:
    h = _mix(TRADES.index(trade), vendor_key)
    profiles = PROFILES[trade]
    return VendorStyle(profile=profiles[h % len(profiles)], phrase_picks=(h >> 8) & 0xFFFF, upper=(h >> 24) % 4 == 0,
                       item_codes=(h >> 26) % 3 == 0, abbreviates=(h >> 28) % 2 == 0, careless=(h >> 30) % 5 == 0,
                       british=(h >> 33) % 6 == 0, habits=(h >> 36) & 0xFFFF)


def _fill(phrase: str, rnd: random.Random) -> str:
    values = {
        "n": str(rnd.randint(2, 40)), "dim": rnd.choice(("2x4", "2x6", "2x8", "2x10", "4x4", "2x12")),
        "len": rnd.choice(("8", "10", "12", "14", "16", "92-5/8")), "yd": str(rnd.randint(2, 40)),
        "hrs": str(rnd.randint(8, 160)), "permit": f"{rnd.choice(('BP', 'EL', 'PL', 'B'))}-{rnd.randint(20, 26)}-{rnd.randint(100, 9999):04d}",
        "lb": str(rnd.choice((10, 20, 30, 40, 60, 80))), "cs": str(rnd.randint(1, 12)), "month": rnd.choice(_MONTHS),
        "wk": rnd.choice(("1 day", "1 week", "4 weeks", "daily", "weekly", "monthly", "2 days")),
        "job": rnd.choice((f"Job {rnd.randint(1000, 2999)}", f"{rnd.randint(100, 9999)} {rnd.choice(_STREETS)}",
                           f"#{rnd.randint(1000, 2999)}", f"PO {rnd.randint(10000, 99999)}")),
    }
    return phrase.format(**values)


def _typo(text: str, rnd: random.Random) -> str:
    """One misspelt word: a dropped, doubled or swapped letter."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    if not candidates:
        return text
    i = rnd.choice(candidates)
    w, k = words[i], rnd.randrange(1, len(words[i]) - 1)
    kind = rnd.randrange(3)
    words[i] = w[:k] + w[k + 1:] if kind == 0 else w[:k] + w[k] + w[k:] if kind == 1 else w[:k - 1] + w[k] + w[k - 1] + w[k + 1:]
    return " ".join(words)


@dataclass(frozen=True)
class BillLine:
    description: str
    category: str
    accounts: tuple[str, ...]  # as coded, by preference (empty: miscoded, see `noise`)
    amount: float
    noise: int  # when `accounts` is empty: picks the unrelated expense account it went to


def bill_line(trade: str, vendor_key: int, rnd: random.Random) -> BillLine:
    """One line of a bill from this vendor, coded as the company's history has it."""
    style = vendor_style(trade, vendor_key)
    keys, weights = zip(*style.profile.items())
    cat = _BY_KEY[trade][rnd.choices(keys, weights)[0]]
    # the vendor's own 2-3 phrasings of this category, mostly the first
    start = (style.phrase_picks + sum(map(ord, cat.key))) % len(cat.phrases)
    own = [cat.phrases[(start + j * 3) % len(cat.phrases)] for j in range(min(3, len(cat.phrases)))]
    phrase = own[0] if rnd.random() < 0.6 else rnd.choice(own) if rnd.random() < 0.85 else rnd.choice(cat.phrases)
    if rnd.random() < GENERIC:  # "materials per quote": only the vendor (and amount) tell what it was
        phrase = GENERIC_PHRASES[(style.phrase_picks + rnd.randrange(2)) % len(GENERIC_PHRASES)]
    text = _fill(phrase, rnd)
    if style.british:
        text = text.replace("labor", "labour")
    if style.abbreviates:
        for word, short in ABBREVIATIONS.items():
            if word in text.lower():
                i = text.lower().index(word)
                text = text[:i] + short + text[i + len(word):]
    if rnd.random() < (2 * TYPO if style.careless else TYPO):
        text = _typo(text, rnd)
    if style.item_codes:
        text = f"{rnd.choice(('SKU', 'ITEM', '#'))} {(_mix(vendor_key, sum(map(ord, phrase))) % 90000) + 10000} - {text}"
    if style.upper:
        text = text.upper()
    amount = round(cat.low * (cat.high / cat.low) ** rnd.random(), 2)
    # coding: this vendor's habit on an inconsistent category, then chance, then miscoding
    accounts = cat.accounts
    for alt, share in cat.alternatives:
        habit = ((style.habits + sum(map(ord, cat.key))) % 100) / 100  # some vendors' lines always go the other way
        if habit < share * 0.6 or rnd.random() < share * 0.4:
            accounts = alt
    noise = 0
    if rnd.random() < NOISE:
        accounts, noise = (), rnd.getrandbits(30)
    return BillLine(text, cat.key, accounts, amount, noise)


def resolve_account(line: BillLine, names: Mapping[str, object], expense: Sequence[object], fallback_key: int = 0) -> object:
    """The account `line` was coded to in a chart: the first of its preferred names the chart
    has (`names`: casefolded name -> account), else a stable pick among the chart's expense
    accounts (by category, so the same kind of line always lands on the same account)."""
    if not expense:
        return None
    if not line.accounts:
        return expense[line.noise % len(expense)]
    for name in line.accounts:
        account = names.get(name.casefold())
        if account is not None:
            return account
    return expense[(sum(map(ord, line.category)) + fallback_key) % len(expense)]


def chart_accounts(trade: str) -> list[str]:
    """Every account name the catalog codes to (an emulator's chart may hold any of them)."""
    seen: dict[str, None] = {}
    for cat in CATALOG[trade]:
        for name in (*cat.accounts, *(n for alt, _ in cat.alternatives for n in alt)):
            seen.setdefault(name)
    return list(seen)

"""Stripe's test cards (docs.stripe.com/testing): test PaymentMethod tokens, card tokens and card
numbers, and what each does when attached and when charged.

Behaviours:
- "ok": attaches, every charge succeeds.
- "charge_fail" (4000 0000 0000 0341): attaches, every charge is declined (card_declined).
- a decline code (generic_decline, insufficient_funds, lost_card, expired_card, incorrect_cvc):
  declined as soon as it is attached (Stripe checks the card), and on every charge.
- "auth_on_setup" (4000 0025 0000 3155): attaches; an off-session charge needs authentication
  (authentication_required) unless the card was set up for off-session use, which a Checkout
  or portal session does (the buyer authenticates on the hosted page).
- "auth_always" (4000 0027 6000 3184): every off-session charge needs authentication.
Other numbers: Luhn-valid ones behave as "ok" (brand from the prefix); others are refused
with incorrect_number.
"""

from __future__ import annotations

CARDS: dict[str, tuple[str, str, str]] = {  # number -> (brand, funding, behaviour)
    "4242424242424242": ("visa", "credit", "ok"),
    "4000056655665556": ("visa", "debit", "ok"),
    "5555555555554444": ("mastercard", "credit", "ok"),
    "2223003122003222": ("mastercard", "credit", "ok"),
    "378282246310005": ("amex", "credit", "ok"),
    "6011111111111117": ("discover", "credit", "ok"),
    "4000000000000341": ("visa", "credit", "charge_fail"),
    "4000000000000002": ("visa", "credit", "generic_decline"),
    "4000000000009995": ("visa", "credit", "insufficient_funds"),
    "4000000000009987": ("visa", "credit", "lost_card"),
    "4000000000000069": ("visa", "credit", "expired_card"),
    "4000000000000127": ("visa", "credit", "incorrect_cvc"),
    "4000002500003155": ("visa", "credit", "auth_on_setup"),
    "4000002760003184": ("visa", "credit", "auth_always"),
}
_TOKENS = {
    "visa": "4242424242424242", "visa_debit": "4000056655665556", "mastercard": "5555555555554444",
    "amex": "378282246310005", "discover": "6011111111111117",
    "chargeCustomerFail": "4000000000000341", "chargeDeclined": "4000000000000002",
    "visa_chargeDeclined": "4000000000000002", "chargeDeclinedInsufficientFunds": "4000000000009995",
    "visa_chargeDeclinedInsufficientFunds": "4000000000009995", "chargeDeclinedLostCard": "4000000000009987",
    "visa_chargeDeclinedLostCard": "4000000000009987", "chargeDeclinedExpiredCard": "4000000000000069",
    "chargeDeclinedIncorrectCvc": "4000000000000127", "authenticationRequiredOnSetup": "4000002500003155",
    "authenticationRequired": "4000002760003184", "threeDSecure2Required": "4000002760003184",
}
# pm_card_visa, tok_visa, ... -> card number
TOKENS = {f"{prefix}_{name}": number for name, number in _TOKENS.items() for prefix in ("pm_card", "tok")}
DECLINES = {"generic_decline": "Your card was declined.", "insufficient_funds": "Your card has insufficient funds.",
            "lost_card": "Your card was declined.", "expired_card": "Your card has expired.",
            "incorrect_cvc": "Your card's security code is incorrect."}
_DECLINE_CODES = {"expired_card": "expired_card", "incorrect_cvc": "incorrect_cvc"}  # error code when not card_declined


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def describe(number: str) -> tuple[str, str, str] | None:
    """(brand, funding, behaviour) of a card number; None if Stripe would call it incorrect."""
    number = number.replace(" ", "").replace("-", "")
    if number in CARDS:
        return CARDS[number]
    if not number.isdigit() or not 13 <= len(number) <= 19 or not luhn_ok(number):
        return None
    brand = ("visa" if number[0] == "4" else "mastercard" if number[0] in "25" else "amex" if number[:2] in ("34", "37")
             else "discover" if number[:2] in ("60", "65") else "unknown")
    return brand, "credit", "ok"


def decline(behaviour: str) -> tuple[str, str, str | None] | None:
    """(error code, message, decline_code) for a declining behaviour, else None."""
    if behaviour == "charge_fail":
        return "card_declined", DECLINES["generic_decline"], "generic_decline"
    if behaviour in DECLINES:
        code = _DECLINE_CODES.get(behaviour, "card_declined")
        return code, DECLINES[behaviour], behaviour
    return None

"""The pages Stripe hosts, as plain HTML forms a browser (or a form POST) can complete:
Checkout (`/c/pay/{session id}`), the Billing Portal (`/p/session/{token}`), the hosted invoice
page (`/i/{token}`) and its PDF (`/i/{token}/pdf`). Field names, for tests and browsers:
Checkout form `email`, `name`, `number`, `expiry` (MM / YY), `cvc`, button "Subscribe"; portal
forms post to `/p/session/{token}/card` (`number`, `expiry`, `cvc`, `name`),
`/cancel`, `/renew` (`subscription`), `/switch` (`subscription`, `price`)."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}
label{display:block;margin:.6rem 0 .2rem}input,select{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}
button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;background:#635bff;color:#fff;border:0;border-radius:4px}
.error{color:#df1b41;border:1px solid #df1b41;padding:.5rem;border-radius:4px}.box{border:1px solid #e3e8ee;border-radius:6px;
padding:1rem;margin:1rem 0}.muted{color:#697386}table{width:100%;border-collapse:collapse}td{padding:.3rem 0}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>'
            f'<body><main>{body}</main></body></html>')


def money(amount: int | None, currency: str) -> str:
    return f"{(amount or 0) / 100:,.2f} {currency.upper()}"


def _interval(price: dict) -> str:
    r = price.get("recurring") or {}
    if not r:
        return ""
    return f" / {r['interval']}" if r.get("interval_count", 1) == 1 else f" every {r['interval_count']} {r['interval']}s"


def checkout_page(session: dict, lines: list[dict], trial_days: int | None, error: str | None = None) -> str:
    rows = "".join(f"<tr><td>{escape(l['description'])} × {l['quantity']}</td>"
                   f"<td>{money(l['amount_total'], l['currency'])}{_interval(l['price'])}</td></tr>" for l in lines)
    trial = f'<p class="muted">{trial_days}-day free trial, then billed as above.</p>' if trial_days else ""
    if session["status"] != "open":
        return _page("Checkout", f"<h1>This checkout session is {escape(session['status'])}.</h1>")
    email = "" if session["customer"] else (
        f'<label for="email">Email</label><input id="email" name="email" type="email" required '
        f'value="{escape(session["customer_email"] or "")}">')
    cancel = (f'<p><a href="/c/pay/{escape(session["id"])}/cancel">Cancel and go back</a></p>' if session["cancel_url"] else "")
    err = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (f"<h1>Subscribe</h1><div class=box><table>{rows}</table>{trial}</div>{err}"
            f'<form method="post" action="/c/pay/{escape(session["id"])}">{email}'
            '<label for="name">Name on card</label><input id="name" name="name" autocomplete="cc-name">'
            '<label for="number">Card number</label><input id="number" name="number" inputmode="numeric" '
            'autocomplete="cc-number" placeholder="4242 4242 4242 4242" required>'
            '<label for="expiry">Expiry (MM / YY)</label><input id="expiry" name="expiry" placeholder="12 / 34" required>'
            '<label for="cvc">CVC</label><input id="cvc" name="cvc" inputmode="numeric" placeholder="123" required>'
            f'<button type="submit">Subscribe</button></form>{cancel}')
    return _page("Checkout", body)


def portal_page(token: str, customer: dict, subs: list[dict], card: dict | None, prices: list[dict], invoices: list[dict],
                config: dict, products: dict[str, str], error: str | None = None, notice: str | None = None) -> str:
    f = config["features"]
    base = f"/p/session/{escape(token)}"
    parts = [f"<h1>Billing for {escape(customer['name'] or customer['email'] or customer['id'])}</h1>"]
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    if notice:
        parts.append(f'<p role="status">{escape(notice)}</p>')
    for sub in subs:
        item = sub["items"]["data"][0]
        price = item["price"]
        status = sub["status"].replace("_", " ")
        ends = " (cancels at period end)" if sub["cancel_at_period_end"] else ""
        block = [f'<div class="box" data-subscription="{escape(sub["id"])}"><h2>Current plan</h2>'
                 f"<p><strong>{escape(products.get(price['product'], price['product']))}</strong> "
                 f"{money(price['unit_amount'], price['currency'])}{_interval(price)} × {item['quantity']}</p>"
                 f"<p>Status: <span class=status>{escape(status)}</span>{ends}</p>"]
        if f["subscription_update"]["enabled"] and sub["status"] in ("active", "trialing", "past_due"):
            options = "".join(f'<option value="{escape(p["id"])}"{" selected" if p["id"] == price["id"] else ""}>'
                              f"{escape(products.get(p['product'], p['product']))} {money(p['unit_amount'], p['currency'])}"
                              f"{_interval(p)}</option>" for p in prices)
            block.append(f'<form method="post" action="{base}/switch"><input type="hidden" name="subscription" '
                         f'value="{escape(sub["id"])}"><label for="price-{escape(sub["id"])}">Switch plan</label>'
                         f'<select id="price-{escape(sub["id"])}" name="price">{options}</select>'
                         '<button type="submit">Update plan</button></form>')
        if f["subscription_cancel"]["enabled"] and not sub["cancel_at_period_end"]:
            block.append(f'<form method="post" action="{base}/cancel"><input type="hidden" name="subscription" '
                         f'value="{escape(sub["id"])}"><button type="submit">Cancel plan</button></form>')
        elif sub["cancel_at_period_end"]:
            block.append(f'<form method="post" action="{base}/renew"><input type="hidden" name="subscription" '
                         f'value="{escape(sub["id"])}"><button type="submit">Renew plan</button></form>')
        block.append("</div>")
        parts.append("".join(block))
    if f["payment_method_update"]["enabled"]:
        current = (f"<p>{escape(card['brand'].title())} ending {escape(card['last4'])}, expires "
                   f"{card['exp_month']:02d}/{card['exp_year']}</p>" if card else "<p>No payment method on file.</p>")
        parts.append(f'<div class="box"><h2>Payment method</h2>{current}<form method="post" action="{base}/card">'
                     '<label for="number">Card number</label><input id="number" name="number" inputmode="numeric" required>'
                     '<label for="expiry">Expiry (MM / YY)</label><input id="expiry" name="expiry" required>'
                     '<label for="cvc">CVC</label><input id="cvc" name="cvc" inputmode="numeric" required>'
                     '<button type="submit">Update payment method</button></form></div>')
    if f["invoice_history"]["enabled"] and invoices:
        rows = "".join(f"<tr><td>{escape(i['number'] or i['id'])}</td><td>{money(i['total'], i['currency'])}</td>"
                       f"<td>{escape(i['status'])}</td><td><a href=\"{escape(i['hosted_invoice_url'] or '#')}\">View</a></td></tr>"
                       for i in invoices if i["status"] != "draft")
        parts.append(f'<div class="box"><h2>Invoice history</h2><table>{rows}</table></div>')
    return _page("Billing portal", "".join(parts) + f'<p><a href="{base}/return">Return</a></p>')


def invoice_page(invoice: dict, token: str, error: str | None = None) -> str:
    """The hosted invoice page: the lines, and for an open invoice a card form that pays it."""
    pay = ""
    if invoice["status"] in ("open", "uncollectible"):
        pay = (f'<form method="post" action="/i/{escape(token)}/pay"><h2>Pay this invoice</h2>'
               '<label for="number">Card number</label><input id="number" name="number" inputmode="numeric" required>'
               '<label for="expiry">Expiry (MM / YY)</label><input id="expiry" name="expiry" required>'
               '<label for="cvc">CVC</label><input id="cvc" name="cvc" inputmode="numeric" required>'
               f'<button type="submit">Pay {money(invoice["amount_remaining"], invoice["currency"])}</button></form>')
    err = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _invoice_view(invoice).replace("</main>", err + pay + "</main>")


def _invoice_view(invoice: dict) -> str:
    rows = "".join(f"<tr><td>{escape(l['description'] or '')}</td><td>{money(l['amount'], l['currency'])}</td></tr>"
                   for l in invoice["lines"]["data"])
    return _page(f"Invoice {invoice['number']}",
                 f"<h1>Invoice {escape(invoice['number'] or '')}</h1><p>Status: <span class=status>{escape(invoice['status'])}</span></p>"
                 f"<table>{rows}</table><p><strong>Total {money(invoice['total'], invoice['currency'])}</strong></p>"
                 f"<p>Amount due {money(invoice['amount_remaining'], invoice['currency'])}</p>"
                 f'<p><a href="{escape(invoice["invoice_pdf"] or "#")}">Download PDF</a></p>')


def invoice_pdf(invoice: dict) -> bytes:
    """A one-page PDF naming the invoice, its total and status (valid enough for any viewer)."""
    text = f"Invoice {invoice['number']}  Total {money(invoice['total'], invoice['currency'])}  Status {invoice['status']}"
    text = text.replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def message_page(title: str, text: str, status: Any = None) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")

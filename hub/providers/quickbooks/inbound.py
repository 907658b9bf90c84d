"""How a QuickBooks Online webhook is verified (scheme `quickbooks`, registered on the spec as
`inbound.verify`). The rules every scheme follows are in hub/inbound/verify.py."""

from __future__ import annotations

from hub.inbound.verify import Context, InboundRequest, verify_body_base64

_verify_signature = verify_body_base64("intuit-signature")


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """QuickBooks Online: ``intuit-signature``, base64 HMAC-SHA256 of the body (signed with
    `hub.inbound.verify.sign_hmac_base64`).

    The key is the app's *verifier token*, not its OAuth client secret. No timestamp:
    replays are absorbed by deduplication.
    """
    _verify_signature(request, secret, ctx)

"""What the messaging sections' actions share: the form's values read safely, the message
a failed action leaves, and the redirect back to the tab (forms POST and redirect)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse

__all__ = ["back", "text", "number"]

HOME = "/settings/integrations"


def back(integration_id: int, section: str, query: str = "") -> RedirectResponse:
    return RedirectResponse(f"{HOME}/{integration_id}/{section}{query}", status_code=303)


def text(form: FormData, name: str, max_chars: int = 500) -> str:
    """A text field, stripped ("" when missing); a list or an overlong value is a bad request."""
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_chars:
        raise HTTPException(400, f"The field {name} is not valid.")
    return value.strip()


def number(form: FormData, name: str) -> int:
    """A positive integer field (a row id); anything else is a bad request."""
    value = text(form, name, 20)
    if not value.isdigit():
        raise HTTPException(400, f"The field {name} is not valid.")
    return int(value)

"""The settings pages' form bodies, validated with pydantic: a form that does not fit is
answered with the page again and a message, and nothing is written."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.auth.passwords import MAX_LENGTH as MAX_PASSWORD
from hub.auth.users import MAX_EMAIL


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False, frozen=True)


class LoginForm(_Form):
    email: str = Field(min_length=3, max_length=MAX_EMAIL)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class CompanyForm(_Form):
    company_id: int = Field(gt=0)


def parse(model: type[_Form], form: Mapping[str, Any]) -> tuple[_Form | None, str | None]:
    """(the form, None), or (None, a message for the person filling it)."""
    try:
        return model.model_validate({k: v for k, v in form.items() if isinstance(v, str)}), None
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
        return None, f"Please check: {', '.join(fields)}." if fields else "Please check the form."

"""The form bodies of the accounting tabs (account mapping, sync preferences, conflicts),
validated with pydantic like the other settings forms (hub/web/forms.py: `parse` turns a
mismatch into a message, and nothing is written)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.sync.merge import POLICIES
from hub.sync.preferences import DIRECTIONS

MAX_CATEGORY = 200


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


class MappingForm(_Form):
    category: str = Field(min_length=1, max_length=MAX_CATEGORY)
    account_id: int = Field(gt=0)


class ClearMappingForm(_Form):
    category: str = Field(min_length=1, max_length=MAX_CATEGORY)


class StreamChoice(_Form):
    enabled: bool
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]  # the stream's own choices are checked by preferences.update


class PreferencesForm(_Form):
    hour: int = Field(ge=0, le=23)
    conflict_policy: Literal[POLICIES]  # type: ignore[valid-type]
    streams: dict[str, StreamChoice]


class ResolveForm(_Form):
    conflict_id: int = Field(gt=0)
    keep: Literal["local", "remote"]


LABELS = {"hour": "nightly hour", "conflict_policy": "conflict policy", "account_id": "account", "keep": "which side to keep",
          "conflict_id": "conflict"}


def check(model: type[_Form], data: dict) -> tuple[_Form | None, str | None]:
    """(the form, None), or (None, what to check, in the words of the page)."""
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        names = []
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            if loc[:1] == ["streams"] and len(loc) >= 3:
                name = f"{loc[1]} {loc[2]}"
            else:
                name = LABELS.get(loc[0], loc[0]) if loc else "the form"
            if name not in names:
                names.append(name)
        return None, f"Please check: {', '.join(names)}." if names else "Please check the form."

"""What every model module shares, defined once: the strict base, `Symbol`, error wording
and header reading.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.tick import SYMBOL_PATTERN

Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
# Categories refused in text a person wrote (names, notes): controls (NUL...), format
# characters (bidi overrides, zero-width), surrogates, private use, line and paragraph
# separators. Such text is shown in terminals and web pages, where these hide or reorder
# what is displayed.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def check_printable(value: str) -> str:
    """`value`, or ValueError naming its first control or formatting character."""
    for i, char in enumerate(value):
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            raise ValueError(
                f"character {i} (U+{ord(char):04X}) is a control or formatting character"
            )
    return value


# Here rather than in subscription.py: a price_level signal names its subscription too.
SUBSCRIPTION_ID_PATTERN = r"^[a-f0-9]{16}$"


class Strict(BaseModel):
    """Frozen, no unknown fields, no NaN or infinity: every model of the contract."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One error of a `ValidationError`: where (dotted, "" for the whole value) and what."""

    loc: tuple[int | str, ...]
    field: str
    message: str
    type: str
    input: Any


def field_problems(exc: ValidationError, *, with_input: bool = False) -> list[FieldProblem]:
    """The errors of `exc` with dotted field names and pydantic's "Value error, " dropped.

    `with_input=False` leaves the offending values out: settings and secrets must never be
    echoed back.
    """
    return [
        FieldProblem(
            loc=tuple(err["loc"]),
            field=".".join(str(part) for part in err["loc"]),
            message=str(err["msg"]).removeprefix("Value error, "),
            type=err["type"],
            input=err.get("input") if with_input else None,
        )
        for err in exc.errors(include_url=False, include_input=with_input)
    ]


def header_int(headers: Iterable[tuple[str, bytes]] | None, name: str) -> int | None:
    """The integer value of Kafka header `name`, or None when absent, empty or not a number."""
    for key, value in headers or ():
        if key == name and value:
            try:
                return int(value)
            except ValueError:
                return None
    return None

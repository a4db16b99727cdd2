"""The exception types the front ends report as a one-line message instead of a traceback."""
from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from typing import Any


class UserError(Exception):
    """Bad input or a state the user can fix; the message says what is wrong and what to do."""


class FieldError(UserError, ValueError):
    """A value given for `field` (a setting or a request field, in snake_case) is wrong; `advice` says what
    to do. `str()` is the library's wording, `field VALUE: advice`; a front end words the field its own way
    (`worded("--feature-block")` on the command line, `worded('"from"')` over HTTP). It is a `ValueError`
    too, so the stage configs that raise it keep the contract callers catching `ValueError` relied on."""

    def __init__(self, field: str, value: Any, advice: str):
        self.field, self.value, self.advice = field, value, advice
        super().__init__(self.worded(field.replace("_", " ")))

    def worded(self, name: str) -> str:
        return f"{name} {self.value}: {self.advice}" if self.value is not None else f"{name}: {self.advice}"


def check_finite(config: Any) -> None:
    """Every float field of a config dataclass (and of those it holds) is finite, else a `FieldError` naming it:
    a NaN learning rate would run for minutes, then fail."""
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            check_finite(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise FieldError(f.name, value, "use a finite number")


def one_line(message: str) -> str:
    """A message as one line: what a library (a decoder, the OS) says may hold newlines and runs of spaces."""
    return " ".join(str(message).split())

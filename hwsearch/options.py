"""One definition per setting: its default, help and check, from which the command line's
flags, the TOML keys, the Python API's keywords and the validation all derive.

A configuration class is a frozen dataclass whose fields are made with :func:`option`; its
``__post_init__`` calls :func:`validate`. The command line adds a flag per field
(``hwsearch.flags``) and a config file sets the same names (dashes or underscores), so a new
setting is one line. Errors name the bad value and what is allowed, in one line
(:class:`ConfigError`).

A message that tells the user which setting to change names it as its keyword in backticks
(:func:`setting`, e.g. ```data_dir```); each interface shows it its own way (the command line
as its flag), so no library below the interfaces knows a flag.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

Check = Callable[[str, Any], str | None]  # (label, value) -> an error message, or None


class ConfigError(ValueError):
    """Bad configuration; the message names the bad value and what is allowed."""


@dataclass(frozen=True)
class Option:
    help: str
    check: Check | None = None
    choices: tuple[str, ...] = ()
    in_spec: bool = False  # part of a study's configuration: recorded, and compared on resume
    metavar: str | None = None  # how a value is written in the help (e.g. URL, N)


def option(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, **kw: Any) -> Any:
    """A dataclass field carrying its :class:`Option`."""
    meta = {"option": Option(help, **kw)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def options_of(cls: Any) -> list[tuple[Field[Any], Option]]:
    return [(f, f.metadata["option"]) for f in fields(cls) if "option" in f.metadata]


def label(name: str) -> str:
    return name.replace("_", "-")


SETTING = re.compile(r"`([a-z][a-z0-9_]*)`")  # a setting named in a message


def setting(name: str) -> str:
    """How a message names the setting ``name`` (its keyword): ```name```."""
    return f"`{name}`"


def validate(obj: Any) -> None:
    """Run every field's check; the first failure is a :class:`ConfigError`."""
    for f, opt in options_of(obj):
        value = getattr(obj, f.name)
        if opt.choices and value not in opt.choices:
            raise ConfigError(
                f"unknown {label(f.name)} {value!r}{did_you_mean(value, opt.choices)}; "
                f"allowed: {', '.join(opt.choices)}"
            )
        message = opt.check(label(f.name), value) if opt.check else None
        if message:
            raise ConfigError(message)


def did_you_mean(value: Any, allowed: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` naming the allowed value nearest a misspelt one, else
    ``""``."""
    near = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


# -- checks -------------------------------------------------------------------------------


def number(
    low: float | None = None, high: float | None = None, *, above: float | None = None
) -> Check:
    """Finite, ``>= low`` (or ``> above``) and ``<= high``; None passes (optional settings)."""

    def check(name: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} {value} must be finite"
        if above is not None and not value > above:
            return f"{name} {value} must be > {above:g}"
        if low is not None and value < low:
            return f"{name} {value} must be >= {low:g}"
        if high is not None and value > high:
            return f"{name} {value} must be <= {high:g}"
        return None

    return check


def in_range(low: int, high: int) -> Check:
    """An integer in ``low..high``, said as a range (depths read better so)."""

    def check(name: str, value: Any) -> str | None:
        if not low <= value <= high:
            return f"{name} {value} out of range; allowed: {low}..{high}"
        return None

    return check


def shown(text: str) -> str:
    """``text`` safe to show on a terminal or a page: every character that is not printable
    (control characters, escape sequences, bidirectional overrides) as its Python escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def check_name(label: str, value: Any, limit: int = 200) -> None:
    """A study name (or prefix) given by the user: printable, at most ``limit`` characters; a
    :class:`ConfigError` naming the value (escaped) otherwise."""
    if value is None:
        return
    message = printable_name(limit)(label, value)
    if message:
        raise ConfigError(message)


def printable_name(limit: int = 200) -> Check:
    """A check: a string of printable characters (no control characters, escape sequences or
    other non-printables), at most ``limit`` long."""

    def check(name: str, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        bad = next((i for i, c in enumerate(value) if not c.isprintable()), None)
        if bad is not None:
            return (f"{name} {_short(value)} holds a non-printable character "
                    f"({repr(value[bad])[1:-1]} at {bad}); allowed: printable characters")
        if len(value) > limit:
            return f"{name} {_short(value)} is {len(value)} characters; allowed: at most {limit}"
        return None

    return check


# -- values from a file or the command line -------------------------------------------------


def coerce(name: str, value: Any, type_name: str) -> Any:
    """``value`` (from TOML or a flag) as the field's declared type, or a one-line error."""
    try:
        if value is None:
            if "None" in type_name:
                return None
            raise ValueError
        if type_name.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if type_name.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if type_name.startswith("bool"):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if type_name.startswith("str"):
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            f"bad value for {label(name)}: {_short(value)} (expected {type_name})"
        ) from None
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def normalise_keys(values: dict[str, Any]) -> dict[str, Any]:
    return {k.replace("-", "_"): v for k, v in values.items()}

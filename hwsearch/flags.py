"""The command line's spelling of the settings: a flag per option of a settings class, and the
messages of the layers below rendered with flags where they name a setting.

A setting's flag is ``--<name with dashes>``, except those in :data:`SPECIAL`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass
from typing import Any

from hwsearch.options import SETTING, label, options_of


@dataclass(frozen=True)
class Flag:
    name: str
    action: str  # argparse's, for a bool setting
    help: str


# Settings whose flag is not their name: the test-set accuracy is on unless --no-test.
SPECIAL = {"eval_test": Flag("--no-test", "store_false",
                             "skip the test-set accuracy (default: measured once, for "
                             "the stored model)")}


def flag(setting: str) -> str:
    """The flag of ``setting`` (a keyword such as ``data_dir``): ``--data-dir``."""
    return SPECIAL[setting].name if setting in SPECIAL else f"--{label(setting)}"


def render(message: str) -> str:
    """``message`` with each setting it names (```data_dir```) as its flag (``--data-dir``)."""
    return SETTING.sub(lambda m: flag(m[1]), message)


def shown(value: Any) -> str:
    """A default as the help shows it: ``none``, ``10,20,50``, ``0.1``."""
    if value is None:
        return "none"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)


def with_default(text: str, default: Any) -> str:
    """``text`` ending in its default, unless it says it already; argparse's % escaped."""
    text = render(text)
    if "default" not in text:
        text += " (default off)" if default is False else f" (default {shown(default)})"
    return text.replace("%", "%%")


def _arg_type(type_name: str) -> Callable[[str], Any] | None:
    for prefix, kind in (("int", int), ("float", float)):
        if type_name.startswith(prefix):
            return kind
    return None


def add_flags(
    parser: argparse.ArgumentParser,
    cls: Any,
    *,
    skip: Iterable[str] = (),
    defaults: bool = True,
    types: bool = True,
    shown_from: Any = None,
    default_text: str | None = None,
) -> None:
    """A flag per option of ``cls``. ``defaults=False`` gives every flag the default None, so
    a caller can tell flags given from flags left out (to merge them over a config file).
    ``types=False`` keeps values as strings for the caller to coerce. Each help line ends in
    the default: ``default_text``, else the field of ``shown_from`` (an instance whose values
    are this command's defaults), else the field's own default."""
    skip = set(skip)
    for f, opt in options_of(cls):
        if f.name in skip:
            continue
        special = SPECIAL.get(f.name)
        default = (getattr(shown_from, f.name) if shown_from is not None
                   else None if f.default is MISSING else f.default)
        text = special.help if special else opt.help
        if default_text:  # "{}": the field's own default
            text = f"{text} (default: {default_text.format(shown(default))})"
        kwargs: dict[str, Any] = {"help": with_default(text, default), "dest": f.name}
        type_name = str(f.type)
        if type_name == "bool":
            kwargs["action"] = special.action if special else "store_true"
            if not defaults:
                kwargs["default"] = None
        else:
            kind = _arg_type(type_name) if types else None
            if kind is not None:
                kwargs["type"] = kind
            if opt.choices:
                kwargs["choices"] = opt.choices
            if opt.metavar:
                kwargs["metavar"] = opt.metavar
            if not defaults:
                kwargs["default"] = None
        if defaults and f.default is not MISSING:
            kwargs.setdefault("default", f.default)
        parser.add_argument(flag(f.name), **kwargs)

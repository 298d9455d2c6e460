"""Print the dependencies of a pyproject.toml, one requirement per line.

Used by docker/Dockerfile to install the project's dependencies in a layer of
their own, from pyproject.toml alone, before the code is copied in (so a code
change does not reinstall them).

    python docker/pyproject-deps.py pyproject.toml --extras dev
"""

from __future__ import annotations

import argparse
import sys
import tomllib


def requirements(pyproject: dict, extras: list[str]) -> list[str]:
    project = pyproject["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no optional-dependencies group {extra!r}")
        reqs.extend(optional[extra])
    return reqs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", help="path to pyproject.toml")
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. dev")
    args = parser.parse_args(argv)
    with open(args.pyproject, "rb") as f:
        data = tomllib.load(f)
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    sys.stdout.write("".join(f"{req}\n" for req in requirements(data, extras)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

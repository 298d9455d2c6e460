"""Print the dependencies of a pyproject.toml, one requirement per line.

Used by docker/Dockerfile to install the project's dependencies in a layer of
their own, from pyproject.toml alone, before the code is copied in (so a code
change does not reinstall them).

    python docker/pyproject-deps.py pyproject.toml --extras dev [--exclude torch,torchvision]

--exclude drops requirements by project name (the Dockerfile installs torch in
a layer of its own, before this one).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib


def project_name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement (PEP 503: lower case, runs of
    -_. as one -)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise SystemExit(f"cannot read a project name from requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(pyproject: dict, extras: list[str], exclude: set[str] = frozenset()) -> list[str]:
    project = pyproject["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no optional-dependencies group {extra!r}")
        reqs.extend(optional[extra])
    return [r for r in reqs if project_name(r) not in exclude]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", help="path to pyproject.toml")
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. dev")
    parser.add_argument("--exclude", default="", help="comma-separated project names to drop")
    args = parser.parse_args(argv)
    with open(args.pyproject, "rb") as f:
        data = tomllib.load(f)
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    exclude = {project_name(n) for n in args.exclude.split(",") if n.strip()}
    sys.stdout.write("".join(f"{req}\n" for req in requirements(data, extras, exclude)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

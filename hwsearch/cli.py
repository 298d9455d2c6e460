"""``hwsearch``: a thin layer from flags to the use cases (``hwsearch.app``). Errors are one line
on stderr, exit code 2."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, NoReturn, TextIO

from hwsearch.app.signals import exit_at_once
from hwsearch.flags import add_flags, render
from hwsearch.options import ConfigError
from hwsearch.storage import StorageError
from hwsearch.storage.url import ENV_VAR, FILE_ENV_VAR, has_password
from hwsearch.usage import redact

EXIT_USAGE = 2
FORMATS = ("table", "json", "csv")  # hwsearch.app.formats.FORMATS
DESCRIPTION = ("Random searches of the Highway Networks papers, stored in Optuna studies, and "
               "their figures. Results go to stdout, progress to stderr; errors are one line "
               "on stderr, exit code 2. For Python: import hwsearch (docs/api.md).")
# These only read the database: the parser they get leaves out the flags of train and launch,
# and the imports those take, so they answer fast (status, best and trials import neither
# torch nor Ray).
LIGHT_COMMANDS = ("status", "best", "trials", "report", "export", "dashboard", "prune-weights")
ALTERNATIVES = (
    f"put the URL in a file and pass --storage-file FILE (or set {FILE_ENV_VAR}), set "
    f"{ENV_VAR}, or give a URL without a password and let libpq read ~/.pgpass or PGPASSWORD"
)


class _Parser(argparse.ArgumentParser):
    argv: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        # argparse quotes the offending values; one may be a URL with a password.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {redact(message, _Parser.argv)}\n")


def _fail(message: str) -> NoReturn:
    print(f"hwsearch: error: {render(message)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def refuse_password_on_command_line(url: str | None) -> None:
    """A ``--storage`` flag holding a password is an error that points to the alternatives;
    the message never repeats the URL."""
    if url and has_password(url):
        raise StorageError(
            f"--storage holds a password, which any user can read on the command line; "
            f"{ALTERNATIVES}"
        )


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL",
                   help="database URL without a password (default $HWSEARCH_STORAGE, else "
                   "sqlite:///highway-search.db)")
    p.add_argument("--storage-file", metavar="FILE",
                   help="file holding the database URL (default $HWSEARCH_STORAGE_FILE)")


def _add_quiet(p: argparse.ArgumentParser, what: str = "progress") -> None:
    p.add_argument("--quiet", "-q", action="store_true",
                   help=f"print no {what} on stderr; results still go to stdout (default off)")


def _progress(args: argparse.Namespace) -> AbstractContextManager[TextIO]:
    """Where a command's progress goes: stderr, or nowhere with --quiet."""
    return open(os.devnull, "w") if args.quiet else contextlib.nullcontext(sys.stderr)


def version() -> str:
    """The installed distribution's version (a checkout without an install: unknown)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("highway-search")
    except PackageNotFoundError:
        return "unknown"


def _storage(args: argparse.Namespace) -> dict[str, str | None]:
    refuse_password_on_command_line(args.storage)
    return {"storage": args.storage, "storage_file": args.storage_file}


# -- train ------------------------------------------------------------------------------------


def _add_train(sub: Any, light: bool) -> None:
    p = sub.add_parser("train", help="train one trial of the papers' protocol")
    _add_quiet(p, "per-epoch lines")
    if light:
        return
    from hwsearch.training import Hyperparams, TrainConfig

    add_flags(p, TrainConfig)
    add_flags(p, Hyperparams, defaults=False,  # those left out come from the model's recipe
              default_text="the model's recipe; fully connected nets {}")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON (default: key=value words)")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from hwsearch.app.train import train, train_settings

    config, hp = train_settings(vars(args))
    with _progress(args) as out:
        summary = train(config, hp, out=out)
    print(json.dumps(summary) if args.json else " ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


# -- launch -----------------------------------------------------------------------------------


def _add_launch(sub: Any, light: bool) -> None:
    p = sub.add_parser("launch", help="run (or resume) the random search")
    _add_quiet(p)
    if light:
        return
    from hwsearch.search.settings import PER_STUDY, LaunchSettings
    from hwsearch.training import TrainConfig

    p.add_argument("--config", help="TOML file with the same keys as these flags (default none)")
    # Values stay strings here and are coerced with the config file's values, by one code path.
    add_flags(p, LaunchSettings, skip={"space"}, defaults=False, types=False)
    add_flags(p, TrainConfig, skip=PER_STUDY, defaults=False, types=False,
              shown_from=LaunchSettings().train)
    p.set_defaults(func=_launch)


def _launch(args: argparse.Namespace) -> int:
    from hwsearch.app.launch import launch, launch_settings
    from hwsearch.search.settings import setting_keys

    refuse_password_on_command_line(args.storage)
    keys = set().union(*setting_keys()) - {"space"}
    settings = launch_settings({k: getattr(args, k) for k in keys}, args.config)
    with _progress(args) as out:
        result = launch(settings, out=out)
    for name, (done, target) in result.studies.items():
        print(f"{name}: {done}/{target} finished")
    return 1 if any(done != target for done, target in result.studies.values()) else 0


# -- the read commands ------------------------------------------------------------------------


def _add_queries(sub: Any, light: bool) -> None:
    for name, help_text in (
        ("status", "studies with counts per state and the best value"),
        ("best", "the best trial per study"),
        ("trials", "every trial of one study"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_storage(p)
        if name == "trials":
            p.add_argument("--study", required=True, help="the study (required; no default)")
        else:
            p.add_argument("--study", help="only this study, which must exist (default: every "
                           "study)")
        p.add_argument("--format", default="table", choices=FORMATS,
                       help="table, json or csv, on stdout (default table)")
        _add_quiet(p)
        p.set_defaults(func=_query, query=name)


def _query(args: argparse.Namespace) -> int:
    from hwsearch.app import queries
    from hwsearch.app.formats import write_rows

    storage = _storage(args)
    try:
        if args.query == "status":
            rows: Any = queries.status(args.study, **storage)
        elif args.query == "best":
            rows = queries.best(args.study, **storage)
        else:
            rows = queries.trials(args.study, **storage)
        write_rows(rows, args.format, sys.stdout)  # the trials stream: the database stays open
    except LookupError as e:
        _fail(str(e))
    return 0


def _add_dashboard(sub: Any, light: bool) -> None:
    p = sub.add_parser("dashboard", help="optuna-dashboard on the same storage (read-only)")
    _add_storage(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--allow-writes", action="store_true",
                   help="let the browser delete, rename, create and tell (default: read-only)")
    _add_quiet(p, "address line and no warning")
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from hwsearch.app.dashboard import dashboard

    with _progress(args) as out:
        return dashboard(args.host, args.port, args.allow_writes, **_storage(args), out=out)


def _add_report(sub: Any, light: bool) -> None:
    p = sub.add_parser("report", help="the papers' figures as a self-contained HTML page")
    _add_storage(p)
    p.add_argument("--out", required=True,
                   help="output directory, made if missing (required; no default)")
    p.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, cifar10 or cifar100 (default mnist)")
    p.add_argument("--study", help="only this study's diagnostics (default: every study's)")
    p.add_argument("--data-dir", help="training data, for the gate and lesioning figures "
                   "(no default: required unless --skip-data-figures)")
    p.add_argument("--seed", type=int, default=0,
                   help="draws Figure 2's and the lesioning's random training examples "
                   "(default 0)")
    p.add_argument("--skip-data-figures", action="store_true",
                   help="draw the page without --data-dir (Figure 2's data and the lesioning "
                   "are then left out, and the page says so) (default off)")
    _add_quiet(p, "the report's stages")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from hwsearch.app.report import report

    print(report(args.out, args.dataset, args.study, args.data_dir, args.seed, **_storage(args),
                 skip_data_figures=args.skip_data_figures,
                 progress=None if args.quiet else sys.stderr))
    return 0


def _add_export(sub: Any, light: bool) -> None:
    p = sub.add_parser("export", help="a trial's trained model as a torch.export program")
    _add_storage(p)
    p.add_argument("--study", required=True, help="the study (required; no default)")
    p.add_argument("--trial", type=int,
                   help="trial number (default: the study's best with stored weights)")
    p.add_argument("--out", required=True,
                   help="the file to write, which must not exist (required; no default)")
    _add_quiet(p)
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from hwsearch.app.export import export

    print(export(args.study, args.out, args.trial, **_storage(args)))
    return 0


def _add_prune(sub: Any, light: bool) -> None:
    p = sub.add_parser("prune-weights", help="drop the weights of all but each study's best "
                       "trials from an existing database (then compact a SQLite file)")
    _add_storage(p)
    p.add_argument("--keep", required=True, metavar="top:N|all|none",
                   help="whose weights stay: the N best trials of each study by objective "
                   "(required; no default)")
    p.add_argument("--study", help="only this study (default: every study)")
    p.add_argument("--dry-run", action="store_true",
                   help="change nothing; say what would be freed (trials, bytes) (default off)")
    _add_quiet(p)
    p.set_defaults(func=_prune)


def _prune(args: argparse.Namespace) -> int:
    from hwsearch.app.prune import prune_weights

    try:
        result = prune_weights(args.keep, dry_run=args.dry_run, study=args.study,
                               **_storage(args))
    except LookupError as e:
        _fail(str(e))
    verb = "would drop" if result.dry_run else "dropped"
    for p in result.studies:
        print(f"{p.study}: keeps {p.kept}, {verb} {p.dropped} ({_mb(p.bytes)})")
    line = f"{verb} the weights of {result.dropped} trials, {_mb(result.bytes)}"
    if result.file_bytes is not None and not result.dry_run:
        before, after = result.file_bytes
        line += f"; database file {_mb(before)} -> {_mb(after)} (compacted)"
    print(line)
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def build_parser(light: bool = False) -> argparse.ArgumentParser:
    """Every command; ``light`` leaves out train's and launch's flags (and their imports)."""
    parser = _Parser(prog="hwsearch", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"hwsearch {version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_launch, _add_queries, _add_dashboard, _add_report, _add_export,
                _add_prune):
        add(sub, light)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # At exit, after every other exit handler (Ray's shutdown included), move every object to
    # the permanent generation, so that the interpreter's last collections need not walk the
    # millions of objects torch, scipy and scikit-learn leave: the report's process ends in
    # about 0.3 s instead of 1.2 (this CPU, loaded). Nothing is skipped: modules are still
    # finalised, files closed.
    atexit.unregister(gc.freeze)  # once, however often main runs in one process
    atexit.register(gc.freeze)
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.argv = argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(light=command in LIGHT_COMMANDS).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:  # Ctrl-C: 130; SIGTERM during a launch: 143
        exit_at_once()  # a second signal while the process ends: 128 + it, at once
        print("hwsearch: interrupted", file=sys.stderr)
        return int(getattr(e, "exit_code", 130))
    except Exception as e:
        if not _is_usage_error(e):
            raise
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)


def _is_usage_error(error: Exception) -> bool:
    """An error the user can mend, said in one line: bad settings or data (ValueError), the
    database, or a launch that cannot go on (imported here: read commands never load the
    search)."""
    if isinstance(error, ConfigError | StorageError | ValueError):  # DataError: ValueError
        return True
    launch_errors = sys.modules.get("hwsearch.search.errors")
    return launch_errors is not None and isinstance(error, launch_errors.LaunchError)


if __name__ == "__main__":
    sys.exit(main())

"""``hwsearch``: a thin layer from flags to the services. Errors are one line, exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from hwsearch.options import ConfigError
from hwsearch.storage import StorageError, mask_url, open_storage, parse_url, resolve_url
from hwsearch.storage.existing import check_sqlite_file
from hwsearch.storage.url import refuse_password_on_command_line

from .errors import LaunchError
from .usage import redact

if TYPE_CHECKING:
    from hwsearch.storage import StudyStorage
    from hwsearch.training.loop import TrialResult

EXIT_USAGE = 2
# These only read the database, and import neither torch nor Ray (so they answer fast): the
# parser they get leaves out the flags of train and launch, which come from torch-side
# configuration classes.
LIGHT_COMMANDS = ("status", "best", "trials", "report", "export", "dashboard")


class _Parser(argparse.ArgumentParser):
    argv: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        # argparse quotes the offending values; one may be a URL with a password.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {redact(message, _Parser.argv)}\n")


def _fail(message: str) -> NoReturn:
    print(f"hwsearch: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL",
                   help="database URL without a password (default $HWSEARCH_STORAGE, else "
                   "sqlite:///highway-search.db)")
    p.add_argument("--storage-file", metavar="FILE",
                   help="file holding the database URL (default $HWSEARCH_STORAGE_FILE)")


def _storage_url(args: argparse.Namespace) -> str:
    refuse_password_on_command_line(args.storage)
    return resolve_url(args.storage, args.storage_file)


def _open_existing(args: argparse.Namespace) -> StudyStorage:
    """The database for a read command: it must exist, and is neither created nor migrated."""
    from .quiet import quiet_optuna

    quiet_optuna()
    return open_storage(_storage_url(args), create=False)


# -- train ------------------------------------------------------------------------------------


def _add_train(sub: Any, light: bool) -> None:
    p = sub.add_parser("train", help="train one trial of the papers' protocol")
    if light:
        return
    from hwsearch.options import add_flags
    from hwsearch.training import Hyperparams, TrainConfig

    add_flags(p, TrainConfig)
    add_flags(p, Hyperparams, defaults=False)  # those left out come from the model's recipe
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import time

    from hwsearch.options import options_of
    from hwsearch.training import Hyperparams, TrainConfig

    config = TrainConfig(**{f.name: getattr(args, f.name) for f, _ in options_of(TrainConfig)})
    given = {f.name: getattr(args, f.name) for f, _ in options_of(Hyperparams)}
    hp = Hyperparams.for_model(config.model, **{k: v for k, v in given.items() if v is not None})

    from hwsearch.training.trainer import (  # torch: the input is good
        load_data,
        resolve_device,
        train,
    )

    device = resolve_device(config.device)
    data = load_data(config, device)
    start = time.perf_counter()

    def on_epoch(epoch: int, results: Sequence[TrialResult]) -> None:
        r = results[0]
        if r.diverged_epoch == epoch:
            print(f"epoch {epoch}/{config.epochs}: diverged (loss not finite or past 100x "
                  "chance)", file=sys.stderr)
            return
        e = r.epochs[-1]
        test = "" if e.test_accuracy is None else f" test_acc {e.test_accuracy:.4f}"
        print(
            f"epoch {epoch}/{config.epochs}: train_loss {e.train_loss:.4f} (whole training "
            f"set; running {e.running_loss:.4f}) train_acc {e.train_accuracy:.4f}{test} "
            f"lr {e.lr:.3g} {e.seconds:.1f}s (eval {e.eval_seconds:.1f}s)",
            file=sys.stderr,
            flush=True,
        )

    print(
        f"training {config.model} depth {config.depth} on {config.dataset} "
        f"({len(data.y_train)} examples) on {device}; recipe {config.recipe.describe()}; "
        f"batch {config.batch}; {hp}",
        file=sys.stderr,
        flush=True,
    )
    (result,), params = train(config, [hp], data, packed=False, on_epoch=on_epoch)
    final = result.final
    best = result.epochs[result.best_epoch - 1] if result.best_epoch else None
    summary = {
        # The objective: the lowest whole-training-set cross-entropy of any epoch.
        "train_loss": result.best_train_loss if final else None,
        "best_epoch": result.best_epoch,
        "final_train_loss": final.train_loss if final else None,
        "final_running_loss": final.running_loss if final else None,
        "train_accuracy": best.train_accuracy if best else None,
        "test_accuracy": best.test_accuracy if best else None,
        "epochs": len(result.epochs),
        "seconds": round(time.perf_counter() - start, 3),
        "params": params,
        "diverged": result.diverged,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


# -- launch -----------------------------------------------------------------------------------


def _add_launch(sub: Any, light: bool) -> None:
    p = sub.add_parser("launch", help="run (or resume) the random search")
    if light:
        return
    from hwsearch.options import add_flags
    from hwsearch.training import TrainConfig

    from .settings import PER_STUDY, LaunchSettings

    p.add_argument("--config", help="TOML file with the same keys as these flags")
    # Values stay strings here and are coerced with the config file's values, by one code path.
    add_flags(p, LaunchSettings, skip={"space"}, defaults=False, types=False)
    add_flags(p, TrainConfig, skip=PER_STUDY, defaults=False, types=False)
    p.set_defaults(func=_launch)


def _launch(args: argparse.Namespace) -> int:
    from .memory import check_fits, local_device
    from .packing import pick_pack_size
    from .settings import build_settings, load_toml, setting_keys

    refuse_password_on_command_line(args.storage)
    values: dict[str, Any] = load_toml(args.config) if args.config else {}
    launch_keys, train_keys = setting_keys()
    for key in (launch_keys | train_keys) - {"space"}:
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    settings = build_settings(values)
    if not settings.ray_address:  # a cluster's workers are not this machine
        pack = min(pick_pack_size(settings), settings.trials)  # no pack exceeds a study
        check_fits(settings.configs(), pack, local_device(settings.gpus_per_trial))
    from .launcher import launch  # Ray, torch: only once the settings and data are good

    result = launch(settings)
    short = [n for n, (done, target) in result.studies.items() if done != target]
    for name, (done, target) in result.studies.items():
        print(f"{name}: {done}/{target} finished")
    return 1 if short else 0


# -- queries ----------------------------------------------------------------------------------


def _add_queries(sub: Any, light: bool) -> None:
    for name, help_text in (
        ("status", "studies with counts per state and the best value"),
        ("best", "the best trial per study"),
        ("trials", "every trial of one study"),
    ):
        p = sub.add_parser(name, help=help_text)
        _add_storage(p)
        p.add_argument("--study", required=name == "trials")
        formats = ("table", "json", "csv") if name != "best" else ("table", "json")
        p.add_argument("--format", default="table", choices=formats)
        p.set_defaults(func=_query, query=name)


def _query(args: argparse.Namespace) -> int:
    from .queries import best_rows, status_rows, trial_rows, write_rows

    store = _open_existing(args)
    try:
        if args.query == "status":
            rows: Iterable[dict[str, Any]] = status_rows(store)
        elif args.query == "best":
            rows = best_rows(store, args.study)
        else:
            rows = trial_rows(store, args.study)
        write_rows(rows, args.format, sys.stdout)  # the trials stream: the store stays open
    except LookupError as e:
        _fail(str(e))
    finally:
        store.close()
    return 0


def _add_dashboard(sub: Any, light: bool) -> None:
    p = sub.add_parser("dashboard", help="optuna-dashboard on the same storage (read-only)")
    _add_storage(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--allow-writes", action="store_true",
                   help="let the browser delete, rename, create and tell (default: read-only)")
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from .dashboard import serve

    # Unlike the other read commands, an empty server database gets Optuna's tables: a fresh
    # compose stack starts the dashboard before the first launch. A SQLite file must exist.
    url = _storage_url(args)
    check_sqlite_file(parse_url(url), mask_url(url))
    store = open_storage(url)
    try:
        return serve(store, host=args.host, port=args.port, allow_writes=args.allow_writes)
    finally:
        store.close()


def _add_report(sub: Any, light: bool) -> None:
    p = sub.add_parser("report", help="the papers' figures as a self-contained HTML page")
    _add_storage(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, cifar10 or cifar100 (default mnist)")
    p.add_argument("--study", help="only this study's diagnostics")
    p.add_argument("--data-dir", help="training data, for the gate and lesioning figures")
    p.add_argument("--seed", type=int, default=0,
                   help="draws Figure 2's and the lesioning's random training examples")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from hwsearch.report import write_report
    from hwsearch.training import DATASETS

    from .quiet import quiet_optuna

    if args.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {args.dataset!r}; allowed: {', '.join(DATASETS)}")
    quiet_optuna()
    path = write_report(
        _storage_url(args),
        args.out,
        dataset=args.dataset,
        study=args.study,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    print(path)
    return 0


def _add_export(sub: Any, light: bool) -> None:
    p = sub.add_parser("export", help="a trial's trained model as a torch.export program")
    _add_storage(p)
    p.add_argument("--study", required=True)
    p.add_argument("--trial", type=int, help="trial number (default: the study's best)")
    p.add_argument("--out", required=True, help="the file to write (must not exist)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from .export import export_trial

    store = _open_existing(args)
    try:
        path = export_trial(store, args.study, args.trial, args.out)
    finally:
        store.close()
    print(path)
    return 0


def build_parser(light: bool = False) -> argparse.ArgumentParser:
    """Every command; ``light`` leaves out train's and launch's flags (and their imports)."""
    parser = _Parser(prog="hwsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_launch, _add_queries, _add_dashboard, _add_report, _add_export):
        add(sub, light)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.argv = argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(light=command in LIGHT_COMMANDS).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, StorageError, LaunchError, ValueError) as e:  # DataError: ValueError
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except KeyboardInterrupt as e:  # Ctrl-C: 130; SIGTERM during a launch: 143
        print("hwsearch: interrupted", file=sys.stderr)
        return int(getattr(e, "exit_code", 130))


if __name__ == "__main__":
    sys.exit(main())

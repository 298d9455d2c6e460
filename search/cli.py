"""``hwsearch``: a thin layer from flags to the services. Errors are one line, exit code 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from hwsearch.storage import StorageError, open_storage, resolve_url
from hwsearch.training import (
    DATASETS,
    DEVICES,
    DTYPES,
    MODELS,
    ConfigError,
    DataError,
    Hyperparams,
    TrainConfig,
    TrialResult,
)

from .errors import LaunchError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> NoReturn:
    print(f"hwsearch: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


# -- train ------------------------------------------------------------------------------------


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train one trial of the papers' protocol")
    d, h = TrainConfig(), Hyperparams()
    p.add_argument("--dataset", default=d.dataset, choices=DATASETS)
    p.add_argument("--data-dir", help="directory with the dataset files (MNIST: IDX files)")
    p.add_argument("--download", action="store_true", help="fetch the dataset with torchvision")
    p.add_argument("--model", default=d.model, help=f"one of {', '.join(MODELS)}")
    p.add_argument("--depth", type=int, default=d.depth)
    p.add_argument("--width", type=int, default=d.width, help="0: 50 highway, 71 plain")
    p.add_argument("--activation", default=h.activation)
    p.add_argument("--lr", type=float, default=h.lr)
    p.add_argument("--momentum", type=float, default=h.momentum)
    p.add_argument("--decay-rate", type=float, default=h.decay_rate)
    p.add_argument("--decay-steps", type=int, default=d.decay_steps, help="0: one epoch")
    p.add_argument("--staircase", action="store_true")
    p.add_argument("--gate-bias", type=float, default=h.gate_bias)
    p.add_argument("--carry-gate", action="store_true", help="independent carry gate C(x)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=h.seed)
    p.add_argument("--device", default=d.device, choices=DEVICES)
    p.add_argument("--dtype", default=d.dtype, choices=DTYPES)
    p.add_argument("--limit-train", type=int, help="train on the first N examples only")
    p.add_argument("--no-test", action="store_true", help="skip test-set accuracy")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import time

    from hwsearch.training import load_data, resolve_device, train

    config = TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        download=args.download,
        model=args.model,
        depth=args.depth,
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch_size,
        decay_steps=args.decay_steps,
        staircase=args.staircase,
        limit_train=args.limit_train,
        eval_test=not args.no_test,
        device=args.device,
        dtype=args.dtype,
        carry_gate=args.carry_gate,
    )
    hp = Hyperparams(
        lr=args.lr,
        momentum=args.momentum,
        decay_rate=args.decay_rate,
        activation=args.activation,
        gate_bias=args.gate_bias,
        seed=args.seed,
    )
    device = resolve_device(config.device)
    data = load_data(config, device)
    start = time.perf_counter()

    def on_epoch(epoch: int, results: Sequence[TrialResult]) -> None:
        r = results[0]
        if r.diverged_epoch == epoch:
            print(f"epoch {epoch}/{config.epochs}: diverged (non-finite loss)", file=sys.stderr)
            return
        e = r.epochs[-1]
        test = "" if e.test_accuracy is None else f" test_acc {e.test_accuracy:.4f}"
        print(
            f"epoch {epoch}/{config.epochs}: train_loss {e.train_loss:.4f} "
            f"train_acc {e.train_accuracy:.4f}{test} lr {e.lr:.3g} {e.seconds:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    print(
        f"training {config.model} depth {config.depth} on {config.dataset} "
        f"({len(data.y_train)} examples) on {device}",
        file=sys.stderr,
        flush=True,
    )
    (result,), params = train(config, [hp], data, packed=False, on_epoch=on_epoch)
    final = result.final
    summary = {
        "train_loss": result.best_train_loss if final else None,
        "final_train_loss": final.train_loss if final else None,
        "train_accuracy": final.train_accuracy if final else None,
        "test_accuracy": final.test_accuracy if final else None,
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

_LAUNCH_FLAGS: dict[str, dict[str, Any]] = {
    "--storage": {
        "help": "database URL (default $HWSEARCH_STORAGE or sqlite:///highway-search.db)"
    },
    "--dataset": {"choices": DATASETS},
    "--data-dir": {},
    "--download": {"action": "store_true", "default": None},
    "--models": {"help": "comma-separated: plain,highway (or conv presets)"},
    "--depths": {"help": "comma-separated, e.g. 10,20,50,100"},
    "--width": {"type": int},
    "--trials": {"type": int, "help": "finished trials per configuration (default 40)"},
    "--epochs": {"type": int},
    "--batch-size": {"type": int},
    "--limit-train": {"type": int},
    "--decay-steps": {"type": int},
    "--seed": {"type": int},
    "--ray-address": {"help": "existing Ray cluster (default: start a local Ray)"},
    "--cpus-per-trial": {"type": float},
    "--gpus-per-trial": {"type": float, "help": "fractions share a GPU between packs"},
    "--max-concurrent": {"type": int},
    "--pack": {"help": "Optuna trials per Ray trial: a number or auto (default)"},
    "--device": {"choices": DEVICES},
    "--study-prefix": {},
    "--max-failed-packs": {"type": int, "help": "give up after this many failed packs in a row"},
    "--heartbeat": {"type": int, "help": "seconds between trial heartbeats (default 10)"},
    "--progress-every": {"type": float, "help": "seconds between progress reports"},
}


def _add_launch(sub: Any) -> None:
    p = sub.add_parser("launch", help="run (or resume) the random search")
    p.add_argument("--config", help="TOML file with the same keys as these flags")
    for flag, kwargs in _LAUNCH_FLAGS.items():
        p.add_argument(flag, **{"default": None, **kwargs})
    p.set_defaults(func=_launch)


def _launch(args: argparse.Namespace) -> int:
    from .launcher import launch
    from .settings import build_settings, load_toml

    values: dict[str, Any] = load_toml(args.config) if args.config else {}
    for flag in _LAUNCH_FLAGS:
        key = flag[2:].replace("-", "_")
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if isinstance(values.get("pack"), str) and values["pack"] != "auto":
        try:
            values["pack"] = int(values["pack"])
        except ValueError:
            raise ConfigError(
                f"bad pack {values['pack']!r}; allowed: a number >= 1 or auto"
            ) from None
    settings = build_settings(values)
    result = launch(settings)
    short = [n for n, (done, target) in result.studies.items() if done != target]
    for name, (done, target) in result.studies.items():
        print(f"{name}: {done}/{target} finished")
    return 1 if short else 0


# -- queries ----------------------------------------------------------------------------------


def _add_queries(sub: Any) -> None:
    for name, help_text in (
        ("status", "studies with counts per state and the best value"),
        ("best", "the best trial per study"),
        ("trials", "every trial of one study"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--storage")
        p.add_argument("--study", required=name == "trials")
        formats = ("table", "json", "csv") if name != "best" else ("table", "json")
        p.add_argument("--format", default="table", choices=formats)
        p.set_defaults(func=_query, query=name)


def _query(args: argparse.Namespace) -> int:
    from .launcher import quiet_libraries
    from .queries import best_rows, format_rows, status_rows, trial_rows

    quiet_libraries()
    store = open_storage(resolve_url(args.storage))
    try:
        if args.query == "status":
            rows = status_rows(store)
        elif args.query == "best":
            rows = best_rows(store, args.study)
        else:
            rows = trial_rows(store, args.study)
    except LookupError as e:
        _fail(str(e))
    finally:
        store.close()
    print(format_rows(rows, args.format))
    return 0


def _add_dashboard(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="optuna-dashboard on the same storage")
    p.add_argument("--storage")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    url = resolve_url(args.storage)
    store = open_storage(url)  # validates and creates the schema; the dashboard reads it as is
    print(
        f"optuna-dashboard on {store.display_url} at http://{args.host}:{args.port}/",
        file=sys.stderr,
        flush=True,
    )
    store.close()
    # The URL goes through the environment, not argv, so `ps` does not show the password.
    code = (
        "import os, optuna_dashboard;"
        "optuna_dashboard.run_server(os.environ['HWSEARCH_DASHBOARD_URL'],"
        f"host={args.host!r}, port={args.port})"
    )
    import os

    env = {**os.environ, "HWSEARCH_DASHBOARD_URL": url}
    return subprocess.call([sys.executable, "-c", code], env=env)


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="the papers' figures as a self-contained HTML page")
    p.add_argument("--storage")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dataset", default="mnist", choices=DATASETS)
    p.add_argument("--study", help="only this study's diagnostics")
    p.add_argument("--data-dir", help="training data, for the gate and lesioning figures")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from hwsearch.report import write_report

    from .launcher import quiet_libraries

    quiet_libraries()
    path = write_report(
        resolve_url(args.storage),
        args.out,
        dataset=args.dataset,
        study=args.study,
        data_dir=args.data_dir,
    )
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_launch, _add_queries, _add_dashboard, _add_report):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataError, StorageError, LaunchError, ValueError) as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except KeyboardInterrupt:
        print("hwsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``python -m report STORAGE_URL OUT_DIR``: write the reproduction report from the shell."""

from __future__ import annotations

import argparse
import sys

from hwsearch.storage import StorageError
from hwsearch.training import DATASETS

from .write import ReportError, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report", description=__doc__)
    parser.add_argument("storage_url", help="e.g. sqlite:///hwsearch.db")
    parser.add_argument("out_dir", help="where index.html goes")
    parser.add_argument("--dataset", default="mnist", choices=DATASETS)
    parser.add_argument("--study", help="restrict the search diagnostics to this study")
    parser.add_argument("--data-dir", help="training data, for Figure 2 and the lesioning")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.storage_url, args.out_dir, args.dataset, args.study,
                            args.data_dir, args.device)
    except (ReportError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

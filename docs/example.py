"""A notebook's session with hwsearch, as a script: launch a small search, read the best trial,
load its model, and plot its training history.

    python docs/example.py --data-dir ../shared/data/MNIST --out example-out

Each cell of a notebook would be one block below. tests/test_api.py runs it on a few hundred
images (``--limit-train 300``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import plotly.express as px
import torch

import hwsearch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="MNIST's directory")
    parser.add_argument("--out", default="example-out", help="where the plot and db go")
    parser.add_argument("--limit-train", type=int, default=2000, help="training images")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{out / 'example.db'}"

    # 1. A small search: highway nets of 10 layers, 4 trials of 2 epochs each. The test set is
    # measured after every epoch only when asked (a learning curve, for step 4); by default
    # once per trial, on its stored model (the `test_accuracy` column of step 2).
    summary = hwsearch.launch(storage=db, models="highway", depths="10", trials=4, epochs=2,
                              limit_train=args.limit_train, data_dir=args.data_dir,
                              test_every_epoch=True)
    print("complete:", summary.complete, summary.studies)

    # 2. The best trial, and all of them as a frame.
    best = hwsearch.best(db, "mnist-highway-d10")[0]
    print("best:", best.number, best.value, best.params)
    df = hwsearch.trials(db, "mnist-highway-d10")
    print(df[["number", "value", "params_lr", "state", "outcome", "test_accuracy"]])

    # 3. The best trial's model, with its stored weights, in eval mode.
    net = hwsearch.load_model(db, "mnist-highway-d10")
    with torch.no_grad():
        print("logits of a blank image:", net(torch.zeros(1, 784)).squeeze().tolist())

    # 4. Its history: training loss and test accuracy per epoch.
    history = pd.DataFrame(df.set_index("number").loc[best.number, "history"])
    figure = px.line(history, x="epoch", y=["train_loss", "test_accuracy"], markers=True,
                     title=f"trial {best.number} of mnist-highway-d10")
    figure.write_html(out / "history.html", include_plotlyjs=True)
    print("wrote", out / "history.html")


if __name__ == "__main__":
    main()

"""What the papers fix about the protocol, what they leave open, and what this project chose:
said on every report page (and in the README), so no choice of ours passes for the papers'."""

from __future__ import annotations

from hwsearch.models import KINDS, PRESETS
from hwsearch.search.settings import LAUNCH_EPOCHS, LaunchSettings
from hwsearch.search.space import Range, SearchSpace
from hwsearch.training import DATASETS, HIGHWAY, PLAIN
from hwsearch.training.recipe import CAFFE_CIFAR, CAFFE_MNIST, SGD


def _num(x: float) -> str:
    """A bound as the papers write it: ``1e-6``, ``0.99``, ``−10`` (a true minus sign)."""
    text = f"{abs(x):.0e}".replace("e-0", "e-") if 0 < abs(x) < 0.05 else f"{abs(x):g}"
    return ("−" if x < 0 else "") + text


def _range(r: Range) -> str:
    return f"[{_num(r.low)}, {_num(r.high)}]"


_SPACE = SearchSpace()
_LAUNCH = LaunchSettings.__dataclass_fields__
_DEPTHS = _LAUNCH["depths"].default
_TRIALS = _LAUNCH["trials"].default
_MNIST, _CIFAR = CAFFE_MNIST, CAFFE_CIFAR
_CONV = (f"the authors' Caffe definitions and solvers, used as they are (presets "
         f"{', '.join(PRESETS)}): layouts, dropout, Xavier fillers, gate bias "
         f"{_num(PRESETS['mnist-highway-10'].gate_bias)} (MNIST) or "
         f"{_num(PRESETS['cifar10-highway-19'].gate_bias)} (CIFAR), Nesterov momentum "
         f"{_MNIST.momentum}, weight decay {_MNIST.weight_decay}, batch {_MNIST.batch_size}, lr "
         f"{_MNIST.lr} (MNIST) or {_CIFAR.lr} (CIFAR) cut ×{_MNIST.gamma} at fixed iterations of "
         f"a {_MNIST.iterations:,} ({_CIFAR.iterations:,}) iteration run")

# (what, the papers' value, where they say it)
FIXED_BY_THE_PAPERS: tuple[tuple[str, str, str], ...] = (
    ("Architecture (Figure 1)", "fully connected: one plain layer to the width, then depth − 1 "
     "highway (or plain) layers, then a softmax layer; transform gate T = σ(W_T x + b_T), "
     "block output y = H·T + x·(1 − T)", "1505.00387, Sec. 2 and 4.1"),
    ("Widths", f"{KINDS[HIGHWAY].width} units per highway layer, {KINDS[PLAIN].width} per plain "
     "layer (equal parameters per layer)", "1505.00387, Sec. 4.1"),
    ("Depths", f"{', '.join(map(str, _DEPTHS[:-1]))} and {_DEPTHS[-1]} layers",
     "1505.00387, Fig. 1"),
    ("Runs per configuration", f"{_TRIALS} random hyperparameter settings (100 in the NeurIPS "
     "version, whose Figure 1 shows the mean of the top 10): hwsearch launch --trials 100 "
     "makes that protocol", "1505.00387, Sec. 4.1; 1507.06228, Sec. 4.1"),
    ("Searched", "initial learning rate, momentum, learning-rate decay, activation (ReLU or "
     f"tanh) and, for highway nets, the initial transform-gate bias in "
     f"{_range(_SPACE.gate_bias)}", "1505.00387, Sec. 4.1"),
    ("Training", "SGD with momentum; He initialisation", "1505.00387, Sec. 4.1"),
    ("Objective", "the best training-set cross-entropy achieved", "1505.00387, Sec. 4.1"),
    ("Convolutional nets", _CONV, "flukeskywalker/highway-networks, examples/highways"),
)

# (what, this project's choice, why) — the papers do not state these.
OUR_CHOICES: tuple[tuple[str, str, str], ...] = (
    ("Epochs", f"{LAUNCH_EPOCHS} by default (hwsearch launch --epochs)", "long enough for the "
     "deep plain nets to show their trouble on the full training set, short enough for one GPU "
     "in minutes"),
    ("Batch size", str(SGD.batch_size), "a common MNIST choice; the papers' Caffe solver files "
     "are for the convolutional nets"),
    ("Learning rate", f"log-uniform in {_range(_SPACE.lr)}", "wide enough to hold every rate "
     "that trains any of these nets, from deep plain nets (tiny rates) to highway nets (large "
     "ones)"),
    ("Momentum", f"uniform in {_range(_SPACE.momentum)}", "the whole useful range"),
    ("Learning-rate decay", "exponential per step; lr_decay, the factor by which the rate has "
     f"fallen at the end of the run, log-uniform in {_range(_SPACE.lr_decay)}", "a total "
     "factor means the same whatever the number of epochs (a per-epoch factor of 0.8 would be "
     "1e-39 after 400 epochs)"),
    ("Evaluation", "after every epoch, the cross-entropy of the current weights over the "
     "whole training set in use (eval mode); a trial's value is the lowest, and its stored "
     "weights are that epoch's", "the papers' objective, as the authors' Caffe definitions "
     "measure it (a 'test-on-train' stage), not a running mean over changing weights"),
    ("Test accuracy", "measured once per trial, on its stored weights (the best epoch's), "
     "unless hwsearch launch --test-every-epoch asks for every epoch", "the figure Table 1 and "
     "the report show; measuring the test set after every epoch cost more than training the "
     "demo's small runs"),
    ("Data", f"MNIST's {DATASETS['mnist'].train:,} training images, pixels scaled to [0, 1], no "
     "augmentation", "the papers' Figure 1 dataset; no preprocessing is stated"),
    ("Conv search", f"lr log-uniform in {_range(_SPACE.conv_lr)}, Nesterov momentum "
     f"{_range(_SPACE.conv_momentum)}, weight decay log-uniform in "
     f"{_range(_SPACE.weight_decay)}, gate bias {_range(_SPACE.conv_gate_bias)}; ReLU and the "
     "schedule from the solver", "the papers publish one solver per dataset and no search "
     "over it; the ranges hold the published values"),
    ("Conv run length", "set by hwsearch launch --epochs; the solver's milestones stay at their "
     "iterations, so a shorter run is the first part of the authors' (Table 1 labels it short)",
     f"a full MNIST run is {_MNIST.iterations:,} iterations, hours on a GPU"),
)

"""What the papers fix about the protocol, what they leave open, and what this project chose:
said on every report page (and in the README), so no choice of ours passes for the papers'."""

from __future__ import annotations

# (what, the papers' value, where they say it)
FIXED_BY_THE_PAPERS: tuple[tuple[str, str, str], ...] = (
    ("Architecture (Figure 1)", "fully connected: one plain layer to the width, then depth − 1 "
     "highway (or plain) layers, then a softmax layer; transform gate T = σ(W_T x + b_T), "
     "block output y = H·T + x·(1 − T)", "1505.00387, Sec. 2 and 4.1"),
    ("Widths", "50 units per highway layer, 71 per plain layer (equal parameters per layer)",
     "1505.00387, Sec. 4.1"),
    ("Depths", "10, 20, 50 and 100 layers", "1505.00387, Fig. 1"),
    ("Runs per configuration", "40 random hyperparameter settings (100 in the NeurIPS "
     "version, whose Figure 1 shows the mean of the top 10): hwsearch launch --trials 100 "
     "makes that protocol", "1505.00387, Sec. 4.1; 1507.06228, Sec. 4.1"),
    ("Searched", "initial learning rate, momentum, learning-rate decay, activation (ReLU or "
     "tanh) and, for highway nets, the initial transform-gate bias in [−10, −1]",
     "1505.00387, Sec. 4.1"),
    ("Training", "SGD with momentum; He initialisation", "1505.00387, Sec. 4.1"),
    ("Objective", "the best training-set cross-entropy achieved", "1505.00387, Sec. 4.1"),
    ("Convolutional nets", "the authors' Caffe definitions and solvers, used as they are "
     "(presets mnist-highway-10, cifar10-highway-19, cifar100-highway-19): layouts, dropout, "
     "Xavier fillers, gate bias −1 (MNIST) or −2 (CIFAR), Nesterov momentum 0.9, weight decay "
     "0.001, batch 100, lr 0.01 (MNIST) or 0.025 (CIFAR) cut ×0.1 at fixed iterations of a "
     "180,000 (200,000) iteration run", "flukeskywalker/highway-networks, examples/highways"),
)

# (what, this project's choice, why) — the papers do not state these.
OUR_CHOICES: tuple[tuple[str, str, str], ...] = (
    ("Epochs", "50 by default (hwsearch launch --epochs)", "long enough for the deep plain nets "
     "to show their trouble on the full training set, short enough for one GPU in minutes"),
    ("Batch size", "128", "a common MNIST choice; the papers' Caffe solver files are for the "
     "convolutional nets"),
    ("Learning rate", "log-uniform in [1e-6, 1]", "wide enough to hold every rate that trains "
     "any of these nets, from deep plain nets (tiny rates) to highway nets (large ones)"),
    ("Momentum", "uniform in [0, 0.99]", "the whole useful range"),
    ("Learning-rate decay", "exponential per step; lr_decay, the factor by which the rate has "
     "fallen at the end of the run, log-uniform in [1e-3, 1]", "a total factor means the "
     "same whatever the number of epochs (a per-epoch factor of 0.8 would be 1e-39 after "
     "400 epochs)"),
    ("Evaluation", "after every epoch, the cross-entropy of the current weights over the "
     "whole training set in use (eval mode); a trial's value is the lowest, and its stored "
     "weights are that epoch's", "the papers' objective, as the authors' Caffe definitions "
     "measure it (a 'test-on-train' stage), not a running mean over changing weights"),
    ("Data", "MNIST's 60,000 training images, pixels scaled to [0, 1], no augmentation",
     "the papers' Figure 1 dataset; no preprocessing is stated"),
    ("Conv search", "lr log-uniform in [0.001, 0.1], Nesterov momentum [0.8, 0.99], weight "
     "decay log-uniform in [1e-4, 1e-2], gate bias [−4, 0]; ReLU and the schedule from the "
     "solver", "the papers publish one solver per dataset and no search over it; the ranges "
     "hold the published values"),
    ("Conv run length", "set by --epochs; the solver's milestones stay at their iterations, so "
     "a shorter run is the first part of the authors' (Table 1 labels it short)",
     "a full MNIST run is 180,000 iterations, hours on a GPU"),
)

"""Launcher-worker messages survive the trip through a Tune result, whatever Tune adds."""

from __future__ import annotations

import math

from hwsearch.search.messages import (
    EpochReport,
    ErrorReport,
    FinalReport,
    Node,
    PackConfig,
    TrialEpoch,
    TrialFinal,
    parse_result,
    to_result,
)


def test_round_trips_through_a_result_dict() -> None:
    node = Node("abc", "10.0.0.2", "host")
    messages = [
        EpochReport(3, [TrialEpoch(0, {"epoch": 3, "train_loss": 0.5}, None),
                        TrialEpoch(1, None, 2)], node),
        FinalReport([TrialFinal(0, None, 0.25, True, 0.97), TrialFinal(1, 2, math.inf, False)],
                    99, node, eval_seconds=1.5),
        ErrorReport("RuntimeError: no data"),
    ]
    for message in messages:
        result = {**to_result(message), "training_iteration": 4, "time_this_iter_s": 0.1}
        assert parse_result(result) == message


def test_results_without_a_message_are_ignored() -> None:
    assert parse_result({"training_iteration": 1}) is None
    assert parse_result({"hwsearch_message": "epoch", "hwsearch_body/epoch": 3}) is None


def test_pack_config_round_trip() -> None:
    config = PackConfig("s", [1, 2], [{"lr": 0.1}, {"lr": 0.2}], {"model": "highway"})
    assert PackConfig.from_config(config.to_config()) == config
    assert config.weights_key(2) == "s/2"

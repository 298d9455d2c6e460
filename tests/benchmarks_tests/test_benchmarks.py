"""The benchmark scripts run and say what they promise (their figures are not checked here:
timings never gate the suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwtest import REPO as ROOT


def benchmark(script: str, *args: str, out: Path, cwd: Path) -> tuple[dict, str]:
    """Run ``benchmarks/<script>`` with ``args`` and ``--json out``; its JSON and stdout."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("model", ["highway", "mnist-highway-10"])
def test_throughput_smoke_writes_the_agreed_json(tmp_path: Path, model: str) -> None:
    out = tmp_path / "t.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "throughput.py"),
            "--smoke-test",
            "--model",
            model,
            "--data-dir",
            str(tmp_path / "absent"),
            "--threads",
            "1",
            "--mixed",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert "synthetic" in run.stderr
    result = json.loads(out.read_text())
    common = {"conventional", "single", "packed", "evaluation", "meta"}
    if model == "highway":  # mixed activations and the arithmetic limit are the FC nets'
        assert set(result) == common | {"mixed", "arithmetic"}
        assert set(result["mixed"]) == {"2", "3"}
        arithmetic = result["arithmetic"]
        assert arithmetic["peak_gflops"] > 0
        assert 0 < arithmetic["share_of_limit"]["packed k=3 (c)"] < 1
    else:
        assert set(result) == common
    assert set(result["evaluation"]) == {"single", "2", "3"}
    assert all(0 < e["share_of_epoch"] < 1 for e in result["evaluation"].values())
    assert set(result["packed"]) == {"2", "3"}
    assert all(
        v > 0 for v in (result["conventional"], result["single"], *result["packed"].values())
    )
    assert result["meta"]["model"] == model


def test_protocol_builds_the_launch_command() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "protocol.py"),
            "--dry-run",
            "--hwsearch",
            "hwsearch",
            "--pack",
            "8",
            "--limit-train",
            "6000",
            "--gpus-per-trial",
            "0.25",
            "--storage",
            "sqlite:///x.db",
            "--",
            "--extra",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        "$ hwsearch launch --dataset mnist --data-dir ../shared/data/MNIST --models plain,highway"
        " --depths 10,20,50,100 --trials 40 --epochs 1 --pack 8 --storage sqlite:///x.db"
        " --limit-train 6000 --gpus-per-trial 0.25 --extra 1"
    )


def test_protocol_reads_the_launchs_time_line() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("protocol", ROOT / "benchmarks" / "protocol.py")
    protocol = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(protocol)
    from hwsearch.app.progress import timings_line
    from hwsearch.search.timings import Timings

    t = Timings(ray_ready=3.25, first_epoch=7.5, fit_done=20.0, data_seconds=0.5,
                train_seconds=11.0, eval_seconds=2.5, record_seconds=0.25)
    got = protocol.parse_time_line(timings_line(t))
    assert {k: got[k] for k in ("ray_ready_at", "first_epoch_at", "packs_done_at", "data",
                                "train", "evaluate", "record")} == {
        "ray_ready_at": 3.2, "first_epoch_at": 7.5, "packs_done_at": 20.0, "data": 0.5,
        "train": 11.0, "evaluate": 2.5, "record": 0.2}
    assert got["total"] >= 0  # since hwsearch was imported: 0.0 when that was just now


def test_arithmetic_counts_each_matmul_of_the_derivation() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from arithmetic import flops_per_trial_step

    batch, inputs, width, classes = 4, 6, 5, 3
    forward_first, forward_head = 2 * batch * inputs * width, 2 * batch * width * classes
    forward_highway = 2 * 2 * batch * width * width  # H and T
    # depth 1: first and head only; the first layer has no input gradient
    assert flops_per_trial_step(1, width, batch, inputs, classes) == (
        2 * forward_first + 3 * forward_head
    )
    # every further highway layer adds its forward and twice that backward
    step = flops_per_trial_step(3, width, batch, inputs, classes) - flops_per_trial_step(
        2, width, batch, inputs, classes
    )
    assert step == 3 * forward_highway
    plain = flops_per_trial_step(3, width, batch, inputs, classes, highway=False)
    assert plain < flops_per_trial_step(3, width, batch, inputs, classes)


@pytest.mark.slow
def test_scale_times_every_step_on_a_small_study(tmp_path: Path) -> None:
    result, _ = benchmark("scale.py", "--sizes", "12", "--epochs", "3", "--pack", "4",
                          "--skip-report", out=tmp_path / "scale.json", cwd=ROOT)
    row = result["seconds"]["sqlite"]["12"]
    assert set(row) == {"write", "ask round", "status query", "best query", "trials query",
                        "status", "status cpu", "best", "best cpu", "trials", "trials cpu"}
    assert all(v > 0 for v in row.values())


@pytest.mark.slow
def test_grid_runs_a_small_grid_and_checks_its_counts(tmp_path: Path, mnist_dir: Path) -> None:
    result, stdout = benchmark(
        "grid.py", "--data-dir", str(mnist_dir), "--models", "plain,highway", "--depths", "2",
        "--trials", "2", "--limit-train", "256", "--batch-size", "64",
        out=tmp_path / "grid.json", cwd=tmp_path,
    )
    assert result["counts_ok"] and result["count_problems"] == []
    assert sorted(r["study"] for r in result["studies"]) == ["mnist-highway-d2", "mnist-plain-d2"]
    assert all(r["finished"] == 2 and r["running"] == 0 for r in result["studies"])
    timeline = result["timeline_seconds"]
    assert {"ray_ready_at", "first_epoch_at", "train", "evaluate"} <= set(timeline)
    assert 0 < result["arithmetic"]["share_of_limit"] < 1
    assert all(result["arithmetic"]["gflop"][k] > 0 for k in ("train", "evaluate"))
    assert len(result["loadavg"]["before"]) == 3
    assert "counts exact" in stdout


def test_grid_counts_the_grids_matmuls() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("grid", ROOT / "benchmarks" / "grid.py")
    assert spec is not None and spec.loader is not None
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    args, _ = grid.parse_args(["--models", "highway", "--depths", "10", "--trials", "3"])
    flops = grid.grid_flops(args)
    # 3 trials × 468 steps × 55.0 MFLOP; 3 × 70,000 examples × 2·(784·50 + 9·2·50² + 50·10)
    assert flops["train"] == pytest.approx(3 * 468 * 55.04e6, rel=1e-3)
    assert flops["evaluate"] == pytest.approx(3 * 70000 * 2 * (39200 + 45000 + 500), rel=1e-9)
    assert grid.parse_args(["--fraction", "0.25"])[0].trials == 10


@pytest.mark.slow
def test_evaluation_times_an_epoch_and_its_evaluation(tmp_path: Path, mnist_dir: Path) -> None:
    result, _ = benchmark(
        "evaluation.py", "--data-dir", str(mnist_dir), "--fraction", "0.005", "--depths", "2",
        "--k", "2", "--conv-width", "4", "--tanh", "both", out=tmp_path / "evaluation.json",
        cwd=tmp_path,
    )
    assert [(r["config"], r["tanh"]) for r in result["rows"]] == [
        ("highway depth 2, K=2, tanh, torch tanh", "torch"),
        ("highway depth 2, K=2, tanh, sigmoid tanh", "sigmoid"),
        ("mnist-highway-10 width 4, single", "sigmoid")]
    for row in result["rows"]:  # the evaluation is a part of its epoch, in wall and CPU time
        assert 0 < row["eval_s"] < row["epoch_s"]
        assert 0 < row["eval_cpu_s"] < row["epoch_cpu_s"]
    assert result["meta"]["test"] is True and result["meta"]["threads"] == 1


@pytest.mark.slow
def test_matmul_floor_prices_the_grid_by_its_steps_matmuls(tmp_path: Path, mnist_dir: Path) -> None:
    result, stdout = benchmark(
        "matmul_floor.py", "--data-dir", str(mnist_dir), "--depths", "2,3", "--trials", "4",
        "--k", "2", "--steps", "2", "--eval-examples", "600", "--cores", "2",
        out=tmp_path / "floor.json", cwd=tmp_path,
    )
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from arithmetic import eval_flops_per_example, flops_per_trial_step

    rows = result["configurations"]
    assert [(r["model"], r["depth"]) for r in rows] == [
        ("plain", 2), ("plain", 3), ("highway", 2), ("highway", 3)]
    # No timing is compared (the machine's load decides those): the figures must add up.
    for row in rows:
        assert row["step_matmul_s"] > 0 and row["step_s"] > 0 and row["eval_matmul_s"] > 0
        assert row["matmul_share_of_step"] == pytest.approx(
            row["step_matmul_s"] / row["step_s"], abs=1e-3)
        width, highway = (50, True) if row["model"] == "highway" else (71, False)
        flops = 4 * (468 * flops_per_trial_step(row["depth"], width, 128, highway=highway)
                     + 70000 * eval_flops_per_example(row["depth"], width, highway=highway))
        seconds = 2 * (468 * row["step_matmul_s"] + row["eval_matmul_s"])  # 2 packs of 2
        assert row["in_step_gflops"] == pytest.approx(flops / seconds / 1e9, rel=1e-2, abs=0.1)
    # the floor is the configurations' matmul seconds (2 packs each, 468 steps) over 2 cores
    floor = sum(2 * (468 * r["step_matmul_s"] + r["eval_matmul_s"]) for r in rows) / 2
    assert result["summary"]["in_step_floor_s"] == pytest.approx(floor, rel=1e-3, abs=0.1)
    assert result["summary"]["limit_s"] > 0 and result["summary"]["in_cache_floor_s"] > 0
    assert "nothing but matmuls" in stdout

"""The benchmark harness runs end to end on the tiny generated model (shape, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_bench_tiny_reports_rates_stages_ratios_and_a_baseline(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench.py"),
            "--tiny",
            "--baseline",
            "HEAD",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for heading in (
        "raw rates",
        "pp512",
        "seconds per stage",
        "efficiency",
        "against the baseline HEAD",
    ):
        assert heading in result.stdout

    report = json.loads(out.read_text(encoding="utf-8"))
    assert {"pp512", "pp1024", "tg64", "tg64@d1024"} <= set(report["rates"])
    assert all(rate > 0 for rate in report["rates"].values())
    (paper,) = report["papers"]
    assert paper["paper"] == "localdigest-design.pdf"
    assert {"extract", "prompt_eval", "gen_abstract", "retries", "render", "wall"} <= set(
        paper["seconds"]
    )
    assert paper["prompt_tokens"] >= paper["evaluated_tokens"] > 0
    assert paper["generated_tokens"] > 0 and paper["peak_rss_mb"] > 0
    assert paper["efficiency"] > 0 and paper["digest_seconds"] > 0
    assert sum(paper["evaluated_by_stage"].values()) == paper["evaluated_tokens"]
    # selection is scored (forced decoding: seconds under "score"), not generated
    assert {"abstract", "summary"} <= set(paper["evaluated_by_stage"])
    baseline = report["baseline"]
    assert baseline["ref"] == "HEAD" and baseline["papers"][0]["paper"] == paper["paper"]
    assert baseline["papers"][0]["digest_seconds"] > 0 and baseline["ratio"] > 0


def test_cost_model_recovers_a_linear_per_token_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", REPO / "benchmarks" / "bench.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)

    def prompt(n: int) -> float:  # seconds from an empty context: 0.01 + 1e-6 * depth per token
        return 0.01 * n + 1e-6 * n * n / 2

    def gen(depth: float) -> float:
        return 0.04 + 4e-6 * depth

    depth, tg = 4096, 64
    rates = {
        "pp512": 512 / prompt(512),
        f"pp{depth}": depth / prompt(depth),
        f"tg{tg}": 1 / gen(tg / 2),
        f"tg{tg}@d{depth}": 1 / gen(depth + tg / 2),
    }
    cost = bench.CostModel.from_rates(rates, depth, tg)
    assert cost.prompt_seconds(0, 6000) == pytest.approx(prompt(6000))
    assert cost.prompt_seconds(6000, 100) == pytest.approx(prompt(6100) - prompt(6000))
    assert cost.generation_seconds(6000, 1) == pytest.approx(gen(6000.5))

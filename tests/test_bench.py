"""The benchmark harness runs end to end on the tiny generated model (shape, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_tiny_reports_rates_stages_ratios_and_naive(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench.py"),
            "--tiny",
            "--naive",
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
        "reuse",
        "naive pipeline",
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
    assert paper["evaluated_tokens"] > paper["paper_prompt_tokens"] > 0
    assert paper["prompt_tokens"] > paper["evaluated_tokens"]  # later calls reused the paper
    assert paper["generated_tokens"] > 0 and paper["peak_rss_mb"] > 0
    assert paper["efficiency"] > 0 and paper["prefix_reuse"] >= 1
    naive = report["naive"]
    assert naive["calls"] == naive["measured_calls"] == paper["calls"]  # tiny: all replayed
    assert naive["ratio"] > 0

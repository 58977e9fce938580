"""The Ray executor on a local two-worker cluster gives the records the local executor gives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_fake import FakeWorker, make_pdfs, setup

from localdigest.batch import run_batch
from localdigest.errors import ModelError
from localdigest.store import RecordStore

ray = pytest.importorskip("ray", reason="the optional extra localdigest[ray] is not installed")

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local cluster for the module; its workers import the fake worker from tests/."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), saved]))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def failing_factory() -> FakeWorker:
    raise ModelError("model file is truncated: run 'localdigest models install default'")


def test_ray_records_equal_local_records(cluster: None, tmp_path: Path) -> None:
    pdfs = make_pdfs(tmp_path / "papers", 4)
    broken = tmp_path / "papers" / "broken.pdf"
    broken.write_bytes(b"garbage")
    inputs = [*pdfs, broken]
    fingerprint, factory = setup()

    local = RecordStore(tmp_path / "local")
    expected = run_batch(inputs, local, factory, fingerprint=fingerprint)
    remote = RecordStore(tmp_path / "ray")
    summary = run_batch(
        inputs, remote, factory, fingerprint=fingerprint, executor="ray", num_workers=2
    )
    assert (summary.done, summary.failed) == (expected.done, expected.failed) == (4, 1)

    def contents(store: RecordStore) -> dict[str, dict[str, object]]:
        found = {}
        for key, record in store.records():
            data = record.to_dict()
            data["stats"].pop("seconds", None)  # timing of the failure differs
            data["provenance"].pop("created", None)
            found[key] = data
        return found

    assert contents(remote) == contents(local)
    again = run_batch(inputs, remote, factory, fingerprint=fingerprint, executor="ray")
    assert (again.done, again.skipped) == (0, 4)


def test_ray_worker_start_failure_is_the_typed_error(cluster: None, tmp_path: Path) -> None:
    pdfs = make_pdfs(tmp_path / "papers", 1)
    fingerprint, _ = setup()
    store = RecordStore(tmp_path / "store")
    with pytest.raises(ModelError, match="ray worker could not start: model file is truncated"):
        run_batch(
            pdfs, store, failing_factory, fingerprint=fingerprint, executor="ray", num_workers=1
        )
    assert not list(store.claims.directory.iterdir())


def test_dead_actors_are_replaced_and_no_paper_becomes_an_error(
    cluster: None, tmp_path: Path
) -> None:
    """Issue 16: actors killed mid-run (as by the OOM killer) are replaced; their papers are
    retried, never drained into error records once Ray's own restarts are spent."""
    pdfs = make_pdfs(tmp_path / "papers", 6)
    kills = tmp_path / "kills"
    fingerprint, factory = setup(kill_file=str(kills), kills=2)
    store = RecordStore(tmp_path / "store")
    summary = run_batch(
        pdfs, store, factory, fingerprint=fingerprint, executor="ray", num_workers=2
    )
    assert kills.stat().st_size == 2  # two actors died under a paper
    assert (summary.done, summary.failed) == (6, 0)
    assert all(r.status == "ok" for _, r in store.records())


def test_a_stuck_paper_on_ray_is_timed_out_and_its_actor_replaced(
    cluster: None, tmp_path: Path
) -> None:
    pdfs = make_pdfs(tmp_path / "papers", 3)
    stuck = tmp_path / "papers" / "stuck.pdf"
    stuck.write_bytes(b"%PDF-1.7 HANGS")
    fingerprint, factory = setup()
    store = RecordStore(tmp_path / "store")
    summary = run_batch(
        [pdfs[0], stuck, *pdfs[1:]],
        store,
        factory,
        fingerprint=fingerprint,
        executor="ray",
        num_workers=1,
        paper_timeout=2,
    )
    assert (summary.done, summary.failed) == (3, 1)
    assert summary.failures[0].reason == "timed out after 2 s (--paper-timeout)"

"""Batches against a fake worker: skipping, failures, Ctrl-C, progress, sharding and merging."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest
from batch_fake import FakeWorker, fake_fingerprint, make_pdfs

from localdigest import progress as events
from localdigest.batch import BatchSummary, Failure, run_batch
from localdigest.config import Settings
from localdigest.errors import UsageError, WorkerError
from localdigest.executors.work import Worker
from localdigest.inputs import shard
from localdigest.progress import JsonProgress, ProgressEvent, TextProgress
from localdigest.record import STATUS_ERROR
from localdigest.store import RecordStore

FP = fake_fingerprint()


class CountingFactory:
    """Builds FakeWorkers and counts how often it was asked to (the model load).

    Workers are built in the worker process, so the count goes through a file.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        fd, self.path = tempfile.mkstemp(prefix="localdigest-built-")
        os.close(fd)
        weakref.finalize(self, os.unlink, self.path)

    @property
    def built(self) -> int:
        return Path(self.path).stat().st_size

    def __call__(self) -> FakeWorker:
        with open(self.path, "a") as fh:
            fh.write("x")
        return FakeWorker(**self.kwargs)


@pytest.fixture
def pdfs(tmp_path: Path) -> list[Path]:
    return make_pdfs(tmp_path / "papers", 5)


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "store")


def snapshot(store: RecordStore) -> dict[str, dict[str, Any]]:
    return {key: record.to_dict() for key, record in store.records()}


def test_fake_worker_conforms_to_the_protocol() -> None:
    assert isinstance(FakeWorker(), Worker)


def test_batch_processes_then_skips_without_building_a_worker(
    pdfs: list[Path], store: RecordStore
) -> None:
    factory = CountingFactory()
    first = run_batch(pdfs, store, factory, fingerprint=FP)
    assert (first.done, first.skipped, first.failed, first.exit_code) == (5, 0, 0, 0)
    assert factory.built == 1
    assert len(store) == 5
    assert not list(store.claims.directory.iterdir())

    again = CountingFactory()
    second = run_batch(pdfs, store, again, fingerprint=FP)
    assert (second.done, second.skipped, second.failed) == (0, 5, 0)
    assert again.built == 0  # no model loaded just to skip


def test_changed_fingerprint_redoes_exactly_what_it_affects(
    pdfs: list[Path], store: RecordStore
) -> None:
    run_batch(pdfs[:3], store, CountingFactory(), fingerprint=FP)
    new_fp = fake_fingerprint("new-model")
    summary = run_batch(pdfs, store, CountingFactory(model="new-model"), fingerprint=new_fp)
    assert summary.done == 5
    assert len(store) == 8
    assert {r.provenance["model"] for _, r in store.records(new_fp)} == {"new-model"}


def test_force_redoes_existing_records(pdfs: list[Path], store: RecordStore) -> None:
    run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    summary = run_batch(pdfs, store, CountingFactory(), fingerprint=FP, force=True)
    assert (summary.done, summary.skipped) == (5, 0)
    assert len(store) == 5


def test_failures_get_error_records_and_the_batch_goes_on(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    broken = tmp_path / "papers" / "2401.09999v1.pdf"
    broken.write_bytes(b"not a pdf at all")
    flaky = tmp_path / "papers" / "flaky.pdf"
    flaky.write_bytes(b"%PDF-1.7 GENERATION-FAILS")
    gone = tmp_path / "papers" / "deleted.pdf"
    inputs = [broken, pdfs[0], flaky, gone, pdfs[1]]

    summary = run_batch(inputs, store, CountingFactory(), fingerprint=FP)
    assert (summary.done, summary.failed, summary.exit_code) == (2, 3, 1)
    assert summary.failures == [
        Failure(str(broken), "not a PDF (no %PDF header)"),
        Failure(str(flaky), "answers failed validation after 2 retries"),
        Failure(str(gone), "cannot read file: No such file or directory"),
    ]
    errors = {r.source_path: r for _, r in store.records() if r.status == STATUS_ERROR}
    assert set(errors) == {str(broken), str(flaky)}
    assert errors[str(broken)].metadata.arxiv_id == "2401.09999"
    assert errors[str(broken)].provenance["error_permanent"] is True
    assert errors[str(flaky)].provenance["error_type"] == "GenerationError"

    # A re-run retries the generation failure but not the broken PDF (same bytes, same failure).
    log = tmp_path / "log"
    rerun = run_batch(inputs, store, CountingFactory(log=str(log)), fingerprint=FP)
    assert (rerun.done, rerun.skipped, rerun.failed) == (0, 2, 3)
    assert [f.earlier for f in rerun.failures] == [True, False, False]
    assert len(log.read_text().splitlines()) == 1  # only the flaky one ran
    forced = run_batch([broken], store, CountingFactory(), fingerprint=FP, force=True)
    assert forced.failures == [Failure(str(broken), "not a PDF (no %PDF header)")]


def test_ctrl_c_keeps_finished_records_and_releases_claims(
    pdfs: list[Path], store: RecordStore
) -> None:
    def interrupt_third_paper(event: ProgressEvent) -> None:
        if event.index == 3 and event.stage == "generate":
            raise KeyboardInterrupt  # as SIGINT does, in the driver, while the worker works

    summary = run_batch(
        pdfs, store, CountingFactory(), fingerprint=FP, progress=interrupt_third_paper
    )
    assert summary.interrupted and summary.exit_code == 130
    assert summary.done == 2 and len(store) == 2
    assert "interrupted, run again to finish" in summary.render()
    assert not list(store.claims.directory.iterdir())
    rest = run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    assert (rest.done, rest.skipped, rest.interrupted) == (3, 2, False)


def test_a_paper_claimed_by_another_process_is_left_to_it(
    pdfs: list[Path], store: RecordStore
) -> None:
    import hashlib

    other = RecordStore(store.root)
    key = other.key(hashlib.sha256(pdfs[2].read_bytes()).hexdigest(), FP)
    assert other.claims.claim(key)
    summary = run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    assert (summary.done, summary.busy) == (4, 1)
    assert other.claims.path_for(key).exists()  # still theirs
    assert "1 busy in another process" in summary.render()


def test_worker_with_another_fingerprint_is_refused(pdfs: list[Path], store: RecordStore) -> None:
    with pytest.raises(UsageError, match="fingerprint differs"):
        run_batch(pdfs, store, CountingFactory(model="other"), fingerprint=FP)
    assert len(store) == 0
    assert not list(store.claims.directory.iterdir())


def test_executor_settings_are_checked_by_the_settings() -> None:
    with pytest.raises(UsageError, match="executor: 'spark' is not one of 'local', 'ray'"):
        Settings(executor="spark")
    with pytest.raises(UsageError, match="workers: 0 is not in the range x>=1"):
        Settings().with_flags(workers=0)
    with pytest.raises(UsageError, match="--ray-address and --workers need --executor ray"):
        Settings(workers=2).check_executor()
    Settings(workers=2, executor="ray").check_executor()


def test_progress_events_tell_each_stage_with_counts_and_eta(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    run_batch(pdfs[:1], store, CountingFactory(), fingerprint=FP)
    received: list[ProgressEvent] = []
    run_batch(pdfs[:3], store, CountingFactory(), fingerprint=FP, progress=received.append)
    stages = [(e.index, e.stage) for e in received]
    assert stages == [
        (1, events.SKIPPED),
        (2, events.STARTED),
        (2, "generate"),
        (2, events.DONE),
        (3, events.STARTED),
        (3, "generate"),
        (3, events.DONE),
        (3, events.FINISHED),
    ]
    assert received[2].tokens_per_second == 12.5
    assert received[3].eta_seconds is not None  # known once a paper is done
    assert (received[-1].done, received[-1].skipped) == (2, 1)
    assert received[-1].detail["exit_code"] == 0


def test_json_progress_writes_one_object_per_line() -> None:
    stream = io.StringIO()
    JsonProgress(stream)(ProgressEvent(1, 2, "a.pdf", "generate", tokens_per_second=9.5))
    JsonProgress(stream)(ProgressEvent(2, 2, "", events.FINISHED, detail={"done": 2}))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["stage"] == "generate" and lines[0]["tokens_per_second"] == 9.5
    assert lines[1]["detail"] == {"done": 2}


def test_text_progress_and_quiet_mode() -> None:
    started = ProgressEvent(3, 120, "a.pdf", "generate", eta_seconds=3725, tokens_per_second=14.25)
    failed = ProgressEvent(4, 120, "b.pdf", events.FAILED, detail={"reason": "encrypted"})
    skipped = ProgressEvent(5, 120, "c.pdf", events.SKIPPED)
    loud, quiet = io.StringIO(), io.StringIO()
    for event in (started, failed, skipped):
        TextProgress(loud)(event)
        TextProgress(quiet, quiet=True)(event)
    assert loud.getvalue().splitlines() == [
        "[  3/120] a.pdf: generate · 14.2 tok/s · ETA 1:02:05",
        "[  4/120] b.pdf: FAILED: encrypted",
    ]
    assert quiet.getvalue().splitlines() == ["[  4/120] b.pdf: FAILED: encrypted"]


def test_summary_counts_time_and_exit_code() -> None:
    summary = BatchSummary(total=10, done=6, skipped=2, failed=2, seconds=1800.0)
    summary.failures = [Failure("x.pdf", "encrypted", earlier=True), Failure("y.pdf", "timeout")]
    assert summary.papers_per_hour == pytest.approx(14.0)  # 6 done + 1 new failure in 30 min
    assert summary.exit_code == 1
    assert summary.render().splitlines() == [
        "10 papers: 6 done, 2 skipped, 2 failed in 30:00 (14.0 papers/hour)",
        "  failed: x.pdf: encrypted (earlier run)",
        "  failed: y.pdf: timeout",
    ]
    assert summary.to_dict()["exit_code"] == 1
    assert BatchSummary(total=1, done=1).exit_code == 0


def test_shard_stores_merge_by_copying_into_what_one_run_makes(
    tmp_path: Path, store: RecordStore
) -> None:
    pdfs = make_pdfs(tmp_path / "many", 9)
    run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    merged = tmp_path / "merged"
    for index in (1, 2, 3):
        part = RecordStore(tmp_path / f"shard{index}")
        run_batch(shard(pdfs, index, 3), part, CountingFactory(), fingerprint=FP)
        shutil.copytree(part.records_dir, merged / "records", dirs_exist_ok=True)
    assert snapshot(RecordStore(merged)) == snapshot(store)
    again = run_batch(pdfs, RecordStore(merged), CountingFactory(), fingerprint=FP)
    assert (again.done, again.skipped) == (0, 9)


def test_rerun_finds_hashes_in_the_cache_and_reads_no_done_pdf(
    pdfs: list[Path], store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    read: list[Path] = []
    original = Path.read_bytes

    def counting_read(self: Path) -> bytes:
        read.append(self)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    summary = run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    assert (summary.skipped, read) == (5, [])
    pdfs[0].write_bytes(pdfs[0].read_bytes() + b"\n% edited")  # new size and mtime: re-hashed
    summary = run_batch(pdfs, store, CountingFactory(), fingerprint=FP)
    assert (summary.done, summary.skipped) == (1, 4)
    assert read == [pdfs[0], pdfs[0]]  # the edit, then the run (once)


def test_a_wrong_cached_hash_is_caught_before_it_files_a_record(
    pdfs: list[Path], store: RecordStore
) -> None:
    import os

    cache = store.hash_cache()
    cache.put(pdfs[0], os.stat(pdfs[0]), "f" * 64)
    cache.close()
    summary = run_batch(pdfs[:1], store, CountingFactory(), fingerprint=FP)
    assert summary.failures == [
        Failure(str(pdfs[0]), "file changed while the batch ran: run again")
    ]
    assert len(store) == 0
    assert run_batch(pdfs[:1], store, CountingFactory(), fingerprint=FP).done == 1


def test_a_broken_hash_cache_only_costs_hashing(pdfs: list[Path], store: RecordStore) -> None:
    cache_file = store.root / "cache" / "sha256.sqlite"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"this is not a database" * 100)
    assert run_batch(pdfs, store, CountingFactory(), fingerprint=FP).done == 5
    assert run_batch(pdfs, store, CountingFactory(), fingerprint=FP).skipped == 5


def test_a_failed_forced_redo_keeps_the_good_record(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    """Issue 16: --force on a paper whose redo fails must not write the error over the digest."""
    run_batch(pdfs[:2], store, CountingFactory(), fingerprint=FP)
    good = snapshot(store)
    summary = run_batch(
        pdfs[:2], store, CountingFactory(fail_marker=b"%PDF"), fingerprint=FP, force=True
    )
    assert (summary.done, summary.failed, summary.exit_code) == (0, 2, 1)
    assert snapshot(store) == good  # both digests are still there, unchanged
    for key in good:
        failure = json.loads(store.failure_path_for(key).read_text(encoding="utf-8"))
        assert failure["status"] == STATUS_ERROR
        assert failure["error"] == "answers failed validation after 2 retries"


def pdf_holding(path: Path, marker: bytes) -> Path:
    path.write_bytes(b"%PDF-1.7 " + marker)
    return path


def test_a_paper_past_its_time_limit_is_recorded_and_the_batch_goes_on(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    """Issue 16: each paper runs under --paper-timeout; a stuck one is recorded and skipped,
    even when it is stuck where Python cannot interrupt it."""
    stuck = pdf_holding(tmp_path / "stuck.pdf", b"HANGS")
    hostile = pdf_holding(tmp_path / "hostile.pdf", b"HANGS-IN-EXTRACT")
    inputs = [pdfs[0], stuck, pdfs[1], hostile, pdfs[2]]
    summary = run_batch(inputs, store, CountingFactory(), fingerprint=FP, paper_timeout=1)
    assert (summary.done, summary.failed, summary.exit_code) == (3, 2, 1)
    assert summary.failures == [
        Failure(str(stuck), "timed out after 1 s in generate (--paper-timeout)"),
        Failure(str(hostile), "timed out after 1 s in extract (--paper-timeout)"),
    ]
    errors = {r.source_path: r.provenance for _, r in store.records() if r.status == STATUS_ERROR}
    assert errors[str(stuck)]["error_type"] == "PaperTimeout"
    # The same bytes would hang the parser again; a slow generation may pass on another run.
    assert errors[str(hostile)]["error_permanent"] is True
    assert errors[str(stuck)]["error_permanent"] is False
    assert not list(store.claims.directory.iterdir())


def test_a_dead_worker_is_replaced_and_its_paper_retried(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    """Issue 16: a worker process that dies (OOM kill, crash) costs a retry, not records."""
    kills = tmp_path / "kills"
    factory = CountingFactory(kill_file=str(kills), kills=1)
    summary = run_batch(pdfs, store, factory, fingerprint=FP)
    assert (summary.done, summary.failed) == (5, 0)
    assert kills.stat().st_size == 1 and factory.built == 2
    assert all(r.status == "ok" for _, r in store.records())


def test_a_paper_that_kills_its_worker_twice_is_recorded_and_the_rest_done(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    poison = pdf_holding(tmp_path / "poison.pdf", b"KILLS-WORKER")
    summary = run_batch([pdfs[0], poison, pdfs[1]], store, CountingFactory(), fingerprint=FP)
    assert (summary.done, summary.failed) == (2, 1)
    assert summary.failures == [
        Failure(
            str(poison),
            "the worker died 2 times while processing this paper (killed by SIGKILL)",
        )
    ]


def test_workers_that_keep_dying_stop_the_batch_with_a_clear_message(
    tmp_path: Path, pdfs: list[Path], store: RecordStore
) -> None:
    """Never drain an archive into error records: the batch stops, the work so far is kept."""
    run_batch(pdfs[:1], store, CountingFactory(), fingerprint=FP)
    factory = CountingFactory(kill_file=str(tmp_path / "kills"), kills=1000)
    with pytest.raises(WorkerError, match="died 6 times in a row.*run the same command again"):
        run_batch(pdfs, store, factory, fingerprint=FP)
    assert len(store) == 1  # the earlier record, and not one error record
    assert not list(store.claims.directory.iterdir())

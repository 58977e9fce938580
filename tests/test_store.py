"""The record store: content keys, atomic records, corrupt-file quarantine, claims."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from localdigest.errors import StoreError
from localdigest.paper import PaperMetadata
from localdigest.record import SCHEMA_VERSION, STATUS_ERROR, DigestRecord, Problem, QAPair
from localdigest.store import RecordStore, needs_work, record_key

FP = {"model_sha256": "abc", "prompt_version": 3, "options": {"seed": 42, "temperature": 0.2}}
SHA = "0" * 64


def make_record(sha: str = SHA, **changes: object) -> DigestRecord:
    record = DigestRecord(
        source_path="papers/1706.03762v5.pdf",
        source_sha256=sha,
        metadata=PaperMetadata(title="Attention Is All You Need", arxiv_id="1706.03762"),
        abstract_ja="注意機構のみに基づく新しいネットワーク構造を提案する。",
        qa=[QAPair(question="何を提案したか？", answer="Transformer。", pages=[1])],
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_claim(store: RecordStore, key: str, **info: object) -> Path:
    store.claims.directory.mkdir(parents=True, exist_ok=True)
    path = store.claims.path_for(key)
    path.write_text(json.dumps({"host": "x", "pid": 1, "time": 0, "token": "t"} | info))
    return path


def test_key_is_stable_and_depends_on_everything_that_determines_a_record() -> None:
    reordered = {
        "options": {"temperature": 0.2, "seed": 42},
        "prompt_version": 3,
        "model_sha256": "abc",
    }
    assert record_key(SHA, FP) == record_key(SHA, reordered)
    assert len(record_key(SHA, FP)) == 64
    assert record_key(SHA, FP) != record_key("1" * 64, FP)
    assert record_key(SHA, FP) != record_key(SHA, FP | {"model_sha256": "abd"})
    assert record_key(SHA, FP) != record_key(SHA, FP | {"prompt_version": 4})
    assert record_key(SHA, FP) != record_key(
        SHA, FP | {"options": {"seed": 43, "temperature": 0.2}}
    )


def test_key_rejects_a_fingerprint_that_is_not_json() -> None:
    with pytest.raises(StoreError, match="fingerprint is not plain JSON"):
        record_key(SHA, {"model": object()})


def test_put_get_round_trip_keeps_japanese_readable(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "store")
    key = store.key(SHA, FP)
    path = store.put(key, make_record())
    assert path == tmp_path / "store" / "records" / key[:2] / f"{key}.json"
    text = path.read_text(encoding="utf-8")
    assert "注意機構" in text and "\\u" not in text
    assert text.startswith("{\n  ")
    assert store.get(key) == make_record()
    assert store.get(store.key("1" * 64, FP)) is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_put_replaces_a_record_whole(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    store.put(key, make_record())
    store.put(key, make_record(abstract_ja="新しい概要"))
    got = store.get(key)
    assert got is not None and got.abstract_ja == "新しい概要"


def test_put_into_an_unwritable_store_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = RecordStore(tmp_path / "file")
    with pytest.raises(StoreError, match="cannot write record"):
        store.put(store.key(SHA, FP), make_record())


def test_records_skip_temporary_files_and_quarantine_corrupt_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RecordStore(tmp_path)
    good = store.key(SHA, FP)
    store.put(good, make_record())
    bad = store.key("1" * 64, FP)
    store.path_for(bad).parent.mkdir(parents=True, exist_ok=True)
    store.path_for(bad).write_text('{"source_path": "x", "source_sha')  # torn by a crash
    tmp = store.path_for(good).with_name(f".{good}.99999@elsewhere.tmp")
    tmp.write_text("{}")
    with caplog.at_level("WARNING", logger="localdigest"):
        assert [k for k, _ in store.records()] == [good]
    assert "corrupt record moved to" in caplog.text
    assert not store.path_for(bad).exists()
    assert len(list(store.quarantine_dir.iterdir())) == 1
    assert store.get(bad) is None  # and the batch will redo it
    assert len(store) == 1


def test_get_quarantines_a_record_that_does_not_fit_the_schema(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    store.path_for(key).parent.mkdir(parents=True)
    store.path_for(key).write_text('{"unexpected": 1}')
    assert store.get(key) is None
    assert list(store.quarantine_dir.iterdir())


def test_records_of_a_store_that_does_not_exist_yet(tmp_path: Path) -> None:
    assert list(RecordStore(tmp_path / "none").records()) == []


def test_records_filtered_by_fingerprint(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    old = FP | {"model_sha256": "old"}
    store.put(store.key(SHA, old), make_record())
    store.put(store.key(SHA, FP), make_record(abstract_ja="新"))
    assert len(list(store.records())) == 2
    [(key, record)] = list(store.records(FP))
    assert key == store.key(SHA, FP) and record.abstract_ja == "新"


@pytest.mark.parametrize(
    ("record", "force", "expected"),
    [
        (None, False, True),
        (make_record(), False, False),
        (make_record(), True, True),
        (make_record(status=STATUS_ERROR, error="out of memory"), False, True),
        (
            make_record(
                status=STATUS_ERROR, error="encrypted", provenance={"error_permanent": True}
            ),
            False,
            False,
        ),
        (
            make_record(
                status=STATUS_ERROR, error="encrypted", provenance={"error_permanent": True}
            ),
            True,
            True,
        ),
    ],
    ids=["absent", "ok", "ok-forced", "error-retried", "bad-pdf-kept", "bad-pdf-forced"],
)
def test_needs_work(record: DigestRecord | None, force: bool, expected: bool) -> None:
    assert needs_work(record, force=force) is expected


def test_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    first, second = RecordStore(tmp_path), RecordStore(tmp_path)
    key = first.key(SHA, FP)
    assert first.claims.claim(key)
    info = json.loads(first.claims.path_for(key).read_text())
    assert info["pid"] == os.getpid() and info["host"] and info["time"] > 0
    assert not second.claims.claim(key)
    second.claims.release(key)  # not its claim: nothing happens
    assert first.claims.path_for(key).exists()
    first.claims.release(key)
    assert not first.claims.path_for(key).exists()
    assert second.claims.claim(key)


def test_stale_claim_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    import socket

    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    write_claim(store, key, host=socket.gethostname(), pid=dead_pid(), time=time.time())
    assert store.claims.stale() == [key]
    assert store.claims.claim(key)
    assert json.loads(store.claims.path_for(key).read_text())["pid"] == os.getpid()


def test_claim_of_another_host_is_respected_until_it_times_out(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, stale_after=60)
    key = store.key(SHA, FP)
    path = write_claim(store, key, host="other-host", pid=1, time=time.time())
    assert not store.claims.claim(key)
    old = time.time() - 120
    os.utime(path, (old, old))
    assert store.claims.claim(key)


def test_racing_claims_on_a_stale_lock_have_one_winner(tmp_path: Path) -> None:
    import socket

    key = record_key(SHA, FP)
    write_claim(RecordStore(tmp_path), key, host=socket.gethostname(), pid=dead_pid())
    stores = [RecordStore(tmp_path) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    wins: list[bool] = []

    def race(store: RecordStore) -> None:
        barrier.wait()
        wins.append(store.claims.claim(key))

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_keep_alive_refreshes_held_claims(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    assert store.claims.claim(key)
    old = time.time() - 1000
    os.utime(store.claims.path_for(key), (old, old))
    with store.claims.keep_alive(interval=0.02):
        time.sleep(0.2)
    assert time.time() - store.claims.path_for(key).stat().st_mtime < 5


def test_sweep_removes_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    import socket

    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    bucket = store.path_for(key).parent
    bucket.mkdir(parents=True)
    dead = bucket / f".{key}.{dead_pid()}@{socket.gethostname()}.tmp"
    alive = bucket / f".{key}.{os.getppid()}@{socket.gethostname()}.tmp"
    dead.write_text("{")
    alive.write_text("{")
    assert store.temp_files.sweep() == 1
    assert not dead.exists() and alive.exists()


def test_an_error_record_never_replaces_a_good_one(tmp_path: Path) -> None:
    """Issue 16: a failed redo keeps the last good record and files the failure beside it."""
    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    store.put(key, make_record())
    failure = make_record(status=STATUS_ERROR, error="out of memory")
    assert store.put(key, failure) == store.failure_path_for(key)
    kept = store.get(key)
    assert kept is not None and kept.status == "ok" and kept.abstract_ja
    beside = json.loads(store.failure_path_for(key).read_text(encoding="utf-8"))
    assert beside["error"] == "out of memory"
    assert [k for k, _ in store.records()] == [key]  # the failure is not a second record

    store.put(key, make_record(abstract_ja="新しい概要。"))  # a later success supersedes it
    assert not store.failure_path_for(key).exists()

    other = store.key("1" * 64, FP)  # with nothing good to keep, the failure is the record
    store.put(other, failure)
    assert store.get(other) == failure and not store.failure_path_for(other).exists()


def test_sweep_removes_a_dead_writers_temporary_failure_file(tmp_path: Path) -> None:
    import socket

    store = RecordStore(tmp_path)
    key = store.key(SHA, FP)
    bucket = store.path_for(key).parent
    bucket.mkdir(parents=True)
    (bucket / f".{key}-failed.{dead_pid()}@{socket.gethostname()}.tmp").write_text("{")
    assert store.temp_files.sweep() == 1


def test_a_stored_record_of_the_previous_schema_loads_through_its_migration(
    tmp_path: Path,
) -> None:
    golden = Path(__file__).parent / "golden" / "input-records.json"  # schema 1, as stored then
    stored = json.loads(golden.read_text(encoding="utf-8"))["papers"][0]
    assert stored["schema_version"] == 1
    store = RecordStore(tmp_path / "records")
    key = store.key(SHA, FP)
    path = store.put(key, make_record())
    path.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")
    record = store.get(key)
    assert record is not None and record.schema_version == SCHEMA_VERSION
    assert record.abstract_ja == stored["abstract_ja"] and record.abstract_sentences == []
    assert record.qa[0].evidence == [] and not store.quarantine_dir.exists()


def test_a_record_of_a_newer_schema_is_an_error_and_stays_where_it_is(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "records")
    key = store.key(SHA, FP)
    path = store.put(key, make_record())
    newer = {**json.loads(path.read_text(encoding="utf-8")), "schema_version": 99}
    path.write_text(json.dumps(newer), encoding="utf-8")
    with pytest.raises(StoreError, match="schema 99, newer than this localdigest reads"):
        store.get(key)
    assert path.exists() and not store.quarantine_dir.exists()


def test_sweeping_claims_removes_those_of_dead_holders_only(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "records")
    dead, alive = store.key("1" * 64, FP), store.key("2" * 64, FP)
    assert store.claims.claim(alive)
    store.claims.directory.mkdir(parents=True, exist_ok=True)
    holder = {"host": socket.gethostname(), "pid": dead_pid(), "time": time.time(), "token": "x"}
    store.claims.path_for(dead).write_text(json.dumps(holder), encoding="utf-8")
    assert store.claims.sweep() == 1
    assert not store.claims.path_for(dead).exists() and store.claims.path_for(alive).exists()


def test_schema_3_problem_texts_become_the_kinds_they_were_read_as() -> None:
    """Old records keep their flags: each problem text gets the kind schema 3 read from it."""
    from localdigest.record import _schema_3_problem

    golden = Path(__file__).parent / "golden" / "input-records-v2.json"
    stored = json.loads(golden.read_text(encoding="utf-8"))["papers"][0]
    record = DigestRecord.from_dict(stored)
    assert record.qa[1].warnings == [
        Problem("not Japanese", "not Japanese (share 0.42)"),
        Problem("English copied", "a stochastic optimizer for deep networks"),
        Problem("English words left", "for, networks"),
    ]
    assert DigestRecord.from_dict(record.to_dict()) == record  # schema 4 round-trips
    fallback = "summary: the abstract's first sentence; the model's failed (prompt echoed: x)"
    assert _schema_3_problem(fallback)["kind"] == "prompt echoed"  # flagged so before
    assert _schema_3_problem("sentence number 7 out of range")["kind"] == (
        "sentence number out of range"
    )
    assert _schema_3_problem("translation looks truncated")["kind"] == "looks truncated"
    assert _schema_3_problem("something else")["kind"] == "other"

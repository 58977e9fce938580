"""A batch worker in a child process, so that the driver can stop it at any moment.

A paper can keep a worker busy inside C code for long stretches (a pathological PDF in MuPDF,
a long prompt evaluation in llama.cpp) where Python cannot stop it, and a crash there would
take the batch down. In a child process it can always be killed: at the paper's time limit,
on Ctrl-C (the child ignores SIGINT; the driver kills it and releases its claims at once) and
when it dies, the driver starts a new one. The child is started with `spawn`, so it inherits
no threads, locks or open files of the driver; the worker factory travels pickled, as it does
to Ray actors. The model is loaded in the child, once per child.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from localdigest.executors.work import (
    Outcome,
    Task,
    WorkerFactory,
    check_fingerprint,
    run_task,
    start_error,
    timed_out,
)
from localdigest.progress import log_to_stderr

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

log = logging.getLogger("localdigest")

POLL_SECONDS = 0.5  # how often a waiting driver checks that its child is still alive


class WorkerDied(Exception):
    """The child process ended without an answer (crash, out-of-memory kill)."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class WorkerProcess:
    """One worker (one loaded model) in a child process, started when the first paper comes."""

    def __init__(self, worker_factory: WorkerFactory, fingerprint: dict[str, Any]) -> None:
        self.factory = pickle.dumps(worker_factory)  # not picklable: fail here, not in the child
        self.fingerprint = fingerprint
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def process(
        self,
        task: Task,
        on_stage: Callable[[str, dict[str, Any]], None],
        timeout: float | None,
    ) -> Outcome:
        """Run one paper in the child; past `timeout` seconds the child is killed.

        Raises:
            WorkerDied: the child ended before answering (the caller may retry on a new one).
            LocaldigestError: the worker could not start (bad model, fingerprint mismatch).
        """
        conn = self._start()
        started = time.perf_counter()
        deadline = None if timeout is None else started + timeout
        stage: str | None = None
        self._send(conn, (task.name, task.data))
        while True:
            message = self._receive(conn, deadline)
            if message is None:
                self.stop()
                return timed_out(timeout or 0, stage, time.perf_counter() - started)
            if message[0] == "stage":
                stage = message[1]
                on_stage(message[1], message[2])
                continue
            outcome: Outcome = message[1]
            return outcome

    def stop(self) -> None:
        """Kill the child (whatever it is doing) and wait for it; safe to call at any time."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            process.kill()
            process.join()

    def _start(self) -> Connection:
        if self._conn is not None:
            return self._conn
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        level = log.getEffectiveLevel()
        process = context.Process(
            target=serve,
            args=(self.factory, theirs, os.getpid(), level),
            name="localdigest-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        try:
            message = self._receive(ours, None)
            assert message is not None
            if message[0] == "start-error":
                raise start_error(message[1], message[2], "the worker")
            check_fingerprint(message[1], self.fingerprint)
        except BaseException:
            self.stop()
            raise
        return ours

    def _send(self, conn: Connection, message: tuple[Any, ...]) -> None:
        try:
            conn.send(message)
        except OSError:
            raise WorkerDied(self._death()) from None

    def _receive(self, conn: Connection, deadline: float | None) -> tuple[Any, ...] | None:
        """The child's next message; None when `deadline` passed first."""
        while True:
            wait = POLL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.perf_counter())
                if wait <= 0:
                    return None
            try:
                if conn.poll(wait):
                    message: tuple[Any, ...] = conn.recv()
                    return message
            except (EOFError, OSError):
                raise WorkerDied(self._death()) from None
            if self._process is not None and not self._process.is_alive():
                raise WorkerDied(self._death())

    def _death(self) -> str:
        """How the child ended, for the warning and the error record; forgets the child."""
        process = self._process
        code = None
        if process is not None:
            process.join(timeout=5)
            code = process.exitcode
        self.stop()
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}" if code is not None else "no answer"


def serve(factory: bytes, conn: Connection, driver_pid: int, log_level: int) -> None:
    """The child's main loop: build the worker, then answer one paper after another."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it kills us
    threading.Thread(target=_exit_with, args=(driver_pid,), daemon=True).start()
    log_to_stderr(log_level)
    try:
        worker = pickle.loads(factory)()
        conn.send(("ready", worker.fingerprint()))
    except Exception as exc:  # reported to the driver, which raises it as a typed error
        conn.send(("start-error", type(exc).__name__, str(exc)))
        return

    def report(stage: str, detail: dict[str, Any]) -> None:
        conn.send(("stage", stage, detail))

    try:
        while True:
            name, data = conn.recv()
            conn.send(("outcome", run_task(worker, name, data, report)))
    except (EOFError, OSError):  # the driver is done with us, or gone
        return


def _exit_with(driver_pid: int) -> None:
    """End the child when the driver is gone (killed), even in the middle of a C call."""
    while os.getppid() == driver_pid:
        time.sleep(1.0)
    os._exit(1)

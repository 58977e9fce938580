"""Typed errors. The library raises these; only cli.py turns them into messages and exit codes."""

from __future__ import annotations


class LocaldigestError(Exception):
    """Base class: a failure the user can act on; the message says what to do."""

    exit_code = 1


class UsageError(LocaldigestError):
    """The user asked for something invalid (bad setting, unknown name): exit 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or environment variable holds an invalid value."""


class PDFError(LocaldigestError):
    """A PDF cannot be read as a paper (not a PDF, empty, encrypted, scanned, corrupt)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MetadataError(LocaldigestError):
    """An offline metadata file cannot be read."""


class ModelError(LocaldigestError):
    """A model file is missing, invalid, unverified or unsupported."""


class DownloadError(ModelError):
    """A model's packages cannot be fetched (offline, the package registry unreachable)."""


class GenerationError(LocaldigestError):
    """The model failed to produce usable output (after retries)."""


class TemplateError(LocaldigestError):
    """A prompt or output template is missing or refers to an undefined variable."""


class StoreError(LocaldigestError):
    """The record store is unreadable or a record is corrupt."""


class BundleError(LocaldigestError):
    """An offline bundle cannot be made (a dependency cannot be packed, the wheel build failed)."""


class WorkerError(LocaldigestError):
    """Worker processes keep dying (out of memory, a lost node): the batch stops, work is kept."""

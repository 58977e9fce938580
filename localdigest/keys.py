"""Record keys: the content address of a record, from the PDF's sha256 and a fingerprint.

The store files records under these keys, and executors compare a worker's fingerprint with
the batch's in the same spelling, so both take it from here rather than from each other.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from localdigest.errors import StoreError

KEY_VERSION = 1  # bump when the key recipe changes; old records are then simply not found


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces. Raises StoreError if not JSON-able."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"record fingerprint is not plain JSON data: {exc}") from None


def record_key(pdf_sha256: str, fingerprint: dict[str, Any]) -> str:
    """sha256 of everything that determines a record: PDF bytes (by hash) and the fingerprint."""
    recipe = {"key_version": KEY_VERSION, "pdf_sha256": pdf_sha256, "fingerprint": fingerprint}
    return hashlib.sha256(canonical_json(recipe).encode("utf-8")).hexdigest()

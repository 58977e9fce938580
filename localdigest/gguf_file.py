"""The GGUF header of a model file, read without loading weights: what it says and where it ends.

The types (metadata value types, each tensor type's block size and bytes per block) come from the
`gguf` package, which ggml's developers keep in step with llama.cpp, so a new quantization type is
known as soon as that package is upgraded; a type it does not know is an error, never 0 bytes.
`gguf.GGUFReader` itself is not used: it builds an object for every entry of the tokenizer's
arrays and took 10.9 s on the 1.1 GB default model, where walking the header takes milliseconds.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from localdigest.errors import ModelError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFHeader:
    """What the GGUF header says, read without loading the model."""

    version: int
    metadata: dict[str, Any]  # scalar and string values; arrays are skipped
    n_tensors: int
    tensor_data_end: int  # bytes the file must have to hold every tensor

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def context_length(self) -> int:
        return int(self.metadata.get(f"{self.architecture}.context_length", 0))

    @property
    def sliding_window(self) -> int:
        """Tokens a sliding-window layer attends to (Gemma 2 and 3, ...); 0 when it has none."""
        return int(self.metadata.get(f"{self.architecture}.attention.sliding_window", 0))

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None


class _Truncated(Exception):
    pass


class _HeaderReader:
    """Reads the header's little-endian values, refusing lengths past the end of the file."""

    def __init__(self, stream: IO[bytes], file_size: int) -> None:
        from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFValueType

        self.tensor_sizes = {int(kind): size for kind, size in GGML_QUANT_SIZES.items()}
        self.stream = stream
        self.file_size = file_size
        self.string_type, self.array_type = GGUFValueType.STRING, GGUFValueType.ARRAY
        self.scalar_formats = {
            int(kind): "<" + numpy_type().dtype.char
            for kind, numpy_type in GGUFReader.gguf_scalar_to_np.items()
        }

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise _Truncated
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > self.file_size:
            raise _Truncated
        return self.read(length).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == self.string_type:
            return self.string()
        if kind == self.array_type:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            self.skip_array(item_kind, count)
            return None
        if kind not in self.scalar_formats:
            raise ValueError(f"unknown metadata value type {kind}")
        return self.unpack(self.scalar_formats[kind])

    def skip_array(self, kind: int, count: int) -> None:
        if kind in self.scalar_formats:
            size = struct.calcsize(self.scalar_formats[kind]) * count
            if self.stream.tell() + size > self.file_size:
                raise _Truncated
            self.stream.seek(size, os.SEEK_CUR)
        else:
            for _ in range(count):
                self.value(kind)

    def tensor_end(self) -> int:
        """Read one tensor's entry; where its data ends, counted from the data section."""
        self.string()  # name
        dims = [self.unpack("<Q") for _ in range(self.unpack("<I"))]
        kind, offset = self.unpack("<I"), self.unpack("<Q")
        if kind not in self.tensor_sizes:
            raise ValueError(f"tensor type {kind} is unknown to the installed gguf package "
                             "(a newer one may know it: pip install -U gguf)")  # fmt: skip
        block, block_bytes = self.tensor_sizes[kind]
        elements = 1
        for dim in dims:
            elements *= dim
        return offset + elements // block * block_bytes


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse the GGUF header (metadata and tensor table) without loading any weights.

    Raises:
        ModelError: missing file, not a GGUF, or a header cut short or corrupt.
    """
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    file_size = path.stat().st_size
    with path.open("rb") as stream:
        magic = stream.read(4)
        if magic != GGUF_MAGIC:
            raise ModelError(
                f"{path}: not a GGUF model file (starts with {magic!r}, expected {GGUF_MAGIC!r})"
            )
        reader = _HeaderReader(stream, file_size)
        try:
            version = reader.unpack("<I")
            n_tensors, n_kv = reader.unpack("<Q"), reader.unpack("<Q")
            if n_tensors > file_size or n_kv > file_size:
                raise _Truncated
            metadata: dict[str, Any] = {}
            for _ in range(n_kv):
                key = reader.string()
                value = reader.value(reader.unpack("<I"))
                if value is not None:
                    metadata[key] = value
            tensor_end = max((reader.tensor_end() for _ in range(n_tensors)), default=0)
        except _Truncated:
            raise ModelError(f"{path}: GGUF header is truncated or corrupt") from None
        except (ValueError, struct.error) as exc:
            raise ModelError(f"{path}: GGUF header is corrupt: {exc}") from None
        alignment = int(metadata.get("general.alignment", 32)) or 32
        data_start = -(-stream.tell() // alignment) * alignment
    return GGUFHeader(version, metadata, n_tensors, data_start + tensor_end)

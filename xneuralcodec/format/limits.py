"""How much a decode may allocate: the one resource limit a chunk's header could abuse.

A chunk says how many values it decodes to, and a forged one can claim gigabytes in a few
kilobytes (a constant-plane record is 37 bytes). The reader refuses a claim above this limit
before allocating anything. It is a property of the reading process, not of the data, so it
is not a codec option (those land in the stored config): ``XNEURALCODEC_MAX_CHUNK_BYTES``
in the environment raises or lowers it, and reaches dask workers like any environment
variable. The Zarr 3 face also checks the claim against the array's own chunk shape.
"""

from __future__ import annotations

import os

MAX_CHUNK_BYTES_ENV = "XNEURALCODEC_MAX_CHUNK_BYTES"
DEFAULT_MAX_CHUNK_BYTES = 2 ** 32  # 4 GiB of decoded values; real chunks are megabytes


def max_chunk_bytes() -> int:
    """The decode limit in bytes: the environment's, or the default."""
    text = os.environ.get(MAX_CHUNK_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_CHUNK_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected {MAX_CHUNK_BYTES_ENV} as a positive number of bytes, got {text!r} instead")
    return value

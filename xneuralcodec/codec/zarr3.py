"""The Zarr format 3 face: ``NeuralSerializer``, an ArrayBytesCodec for ``serializer=``.

Zarr 3 refuses numcodecs codecs in its pipeline (../shared/NOTES.md), so the same engine is
wrapped as a native array->bytes codec. Work runs in a thread (``asyncio.to_thread``) so
that zarr's event loop keeps other chunks moving while one is being coded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

from ..options import CodecOptions, options_doc, options_signature
from .model_choice import options_for_array
from .numcodecs_codec import decode_chunk, engine_for
from .planes import SUPPORTED_DTYPES

CODEC_NAME = "xneuralcodec.neural"


@dataclass(frozen=True)
class NeuralSerializer(ArrayBytesCodec):
    """Zarr v3 twin of ``NeuralCodec``: same options, same bytes.

    Options (keyword only; all stored in the array's metadata):
    """

    is_fixed_size = False
    options: CodecOptions

    def __init__(self, **options):
        object.__setattr__(self, "options", CodecOptions(**options))

    @classmethod
    def from_dict(cls, data):
        _, config = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        return cls(**(config or {}))

    def to_dict(self):
        return {"name": CODEC_NAME, "configuration": self.options.to_config()}

    def __repr__(self):
        return f"NeuralSerializer({self.options.kwargs_repr()})"

    def validate(self, *, shape, dtype, chunk_grid):
        native = np.dtype(dtype.to_native_dtype()).newbyteorder("=")  # either byte order: chunks decode native
        if native not in SUPPORTED_DTYPES:
            raise TypeError(f"expected a float32 or float64 array for {CODEC_NAME}, got dtype {native} instead")
        if len(shape) < 2:
            raise ValueError(f"expected an array whose last two dims are (lat, lon), got shape {shape} instead")
        chunk_shape = getattr(chunk_grid, "chunk_shape", None)
        if chunk_shape is not None and tuple(chunk_shape[-2:]) != tuple(shape[-2:]):
            raise ValueError(
                f"expected chunks holding whole lat x lon planes {tuple(shape[-2:])}, got chunk shape "
                f"{tuple(chunk_shape)} instead (chunk only the leading dims; see docs/chunking.md)"
            )
        grid = self.options.grid
        if grid is not None and tuple(shape[-2:]) != (grid.nlat, grid.nlon):
            raise ValueError(f"array shape {shape} does not end with the codec grid {grid.nlat} x {grid.nlon}")

    async def _encode_single(self, chunk_array, chunk_spec):
        arr = chunk_array.as_numpy_array()
        options = options_for_array(self.options, arr)
        data = await asyncio.to_thread(engine_for(options).encode, arr, options)
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        data = chunk_bytes.to_bytes()
        # the claimed shape must be the array's chunk shape, checked before anything is allocated
        arr = await asyncio.to_thread(decode_chunk, data, self.options, engine_for, chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError("neural chunk sizes depend on the data")


NeuralSerializer.__init__.__signature__ = options_signature()
NeuralSerializer.__doc__ += options_doc() + "\n"

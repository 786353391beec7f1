"""The Zarr format 2 face: ``NeuralCodec``, a numcodecs codec for ``compressors=``.

It receives whole N-d chunks (last two dims a full lat x lon plane) and returns bytes; the
engine does the work. The network is private state: only the options are stored or
pickled, and the engine (with torch and the model, from the per-process cache) is built
when the first chunk is coded, so that configuring or unpickling a codec stays cheap.
"""

from __future__ import annotations

import inspect

from numcodecs.abc import Codec
from numcodecs.compat import ensure_ndarray_like, ndarray_copy

from ..format import bitstream
from ..network.registry import AUTO
from ..options import CodecOptions, options_doc, options_signature
from . import planes as plane_records
from .model_choice import options_for_array, options_for_chunk

CODEC_ID = "xneuralcodec"


def engine_for(options: CodecOptions):
    """The engine of these options' model and device (models are cached per process); "auto"
    is resolved per chunk first (``model_choice``)."""
    if options.model == AUTO:
        raise ValueError("model='auto' names no weights until a chunk is seen: resolve it with "
                         "model_choice.options_for_array or options_for_chunk first")
    from ..network.weights import load_model
    from .engine import Engine

    return Engine(load_model(options.model, options.weights_sha256, options.device))


def decode_chunk(data, options: CodecOptions, engines=engine_for, shape=None, max_bytes=None):
    """Bytes -> array for both faces: chunks without network planes decode here, without torch
    (``planes.decode_without_network``); the rest go to ``engines(options)`` for the model the
    chunk was written with."""
    chunk = bitstream.unpack(data, shape, max_bytes)
    options = options_for_chunk(options, chunk)
    direct = plane_records.decode_without_network(chunk, options.weights_sha256 or "", options.grid)
    if direct is not None:
        return direct
    return engines(options).decode_chunk(chunk, options.grid)


class NeuralCodec(Codec):
    """Lossy neural compression of global lat/lon planes (Mirowski et al. 2024).

    Options (keyword, or positional in this order; all stored in the array's config):
    """

    codec_id = CODEC_ID

    def __init__(self, *args, **options):
        self._options = CodecOptions(*args, **options)
        self._engines = {}   # model name -> engine, built when a chunk first needs it

    @property
    def options(self) -> CodecOptions:
        return self._options

    def _engine(self, options: CodecOptions):
        engine = self._engines.get(options.model)
        if engine is None:
            engine = self._engines[options.model] = engine_for(options)
        return engine

    def encode(self, buf):
        if getattr(getattr(buf, "dtype", None), "byteorder", "=") == ">":
            raise TypeError(
                "NeuralCodec (Zarr 2) got big-endian data, but Zarr 2 reads a compressor's output in the "
                "array's byte order: create the array with a native dtype (xneuralcodec.encoding does), or "
                "use NeuralSerializer (Zarr 3), which accepts either order"
            )
        options = options_for_array(self._options, buf)
        return self._engine(options).encode(buf, options)

    def decode(self, buf, out=None):
        if out is None:
            return decode_chunk(buf, self._options, self._engine)
        capacity = ensure_ndarray_like(out).nbytes  # checked before anything is decoded
        return ndarray_copy(decode_chunk(buf, self._options, self._engine, max_bytes=capacity), out)

    def get_config(self):
        return {"id": self.codec_id, **self._options.to_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("id", None)
        return cls(**config)

    def __getstate__(self):
        return self.get_config()

    def __setstate__(self, state):
        self.__init__(**{k: v for k, v in state.items() if k != "id"})

    def __eq__(self, other):
        return isinstance(other, NeuralCodec) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(repr(self))

    def __repr__(self):
        return f"NeuralCodec({self._options.kwargs_repr()})"


NeuralCodec.__init__.__signature__ = options_signature(inspect.Parameter.POSITIONAL_OR_KEYWORD)
NeuralCodec.__doc__ += options_doc() + "\n"

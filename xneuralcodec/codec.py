"""The Zarr format 2 face: ``NeuralCodec``, a numcodecs codec for ``compressors=``.

It receives whole N-d chunks (last two dims a full lat x lon plane) and returns bytes; the
engine does the work. The network is private state: only the config is stored or pickled,
and the model comes from the per-process cache (``weights.load_model``).
"""

from __future__ import annotations

from numcodecs.abc import Codec
from numcodecs.compat import ndarray_copy

from .engine import Engine
from .options import DEFAULT_QUALITY, CodecOptions
from .weights import load_model

CODEC_ID = "xneuralcodec"


class NeuralCodec(Codec):
    """Lossy neural compression of global lat/lon planes (Mirowski et al. 2024).

    Parameters: ``quality`` 0 (smallest) .. 5 (finest; floats in between interpolate),
    ``target_mae`` (per plane, the smallest rate whose latitude-weighted MAE is at most
    this; overrides ``quality``), ``model`` and ``weights_sha256``
    (default: the shipped model), ``grid`` (dict with nlat, nlon, lat_first, lon_first;
    inferred from the chunk shape when None), ``nside`` (HEALPix resolution; from the grid
    when None), ``device`` ("auto", "cpu", "cuda"), ``max_abs_error`` (a hard pointwise
    bound: a correction layer after the network keeps every finite value within it),
    ``variable`` and ``level`` (the variable's name, e.g. "t2m" or "z", and its pressure
    level in hPa: a conditioned model codes better knowing them; ``xneuralcodec.encoding``
    fills them in from the dataset).
    """

    codec_id = CODEC_ID

    def __init__(self, quality=DEFAULT_QUALITY, model=None, weights_sha256=None, grid=None, nside=None, device="auto",
                 max_abs_error=None, target_mae=None, variable=None, level=None):
        self._options = CodecOptions.parse(
            quality, model, weights_sha256, grid, nside, device, max_abs_error, target_mae, variable, level)
        self._engine_cache = None

    @property
    def options(self) -> CodecOptions:
        return self._options

    @property
    def _engine(self) -> Engine:
        if self._engine_cache is None:
            o = self._options
            self._engine_cache = Engine(load_model(o.model, o.weights_sha256, o.device))
        return self._engine_cache

    def encode(self, buf):
        o = self._options
        return self._engine.encode(buf, o.grid, o.nside, o.quality, o.max_abs_error, o.target_mae, o.condition)

    def decode(self, buf, out=None):
        arr = self._engine.decode(buf, self._options.grid)
        if out is not None:
            return ndarray_copy(arr, out)
        return arr

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

"""The codec faces: ``NeuralCodec`` (Zarr 2, numcodecs), ``NeuralSerializer`` (Zarr 3) and
``encoding(ds)`` for xarray; the engine behind them turns chunks into bytes and back."""

from .numcodecs_codec import CODEC_ID, NeuralCodec
from .zarr3 import CODEC_NAME, NeuralSerializer

__all__ = ["CODEC_ID", "CODEC_NAME", "NeuralCodec", "NeuralSerializer"]

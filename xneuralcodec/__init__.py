"""xneuralcodec: neural compression of global atmospheric fields for Zarr and xarray.

    import xneuralcodec
    ds.to_zarr("out.zarr", encoding=xneuralcodec.encoding(ds))   # then xr.open_zarr("out.zarr")

Zarr format 2 uses ``NeuralCodec`` (a numcodecs codec, ``compressors=``), format 3 its twin
``NeuralSerializer`` (``serializer=``). Both are registered through entry points, so a
process that never imports this package still reads the stores.
"""

from importlib.metadata import PackageNotFoundError, version

import numcodecs
import zarr

from .codec.numcodecs_codec import NeuralCodec
from .codec.xarray_encoding import encoding
from .codec.zarr3 import CODEC_NAME, NeuralSerializer

try:
    __version__ = version("xneuralcodec")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

numcodecs.register_codec(NeuralCodec)
zarr.registry.register_codec(CODEC_NAME, NeuralSerializer)

__all__ = ["NeuralCodec", "NeuralSerializer", "encoding", "__version__"]

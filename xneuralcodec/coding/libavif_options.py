"""libavif's encoder with libaom codec options, through the libavif that imagecodecs bundles (ctypes).

Why: imagecodecs' ``avif_encode`` passes no codec options to libaom, and libaom's ``tune=ssim``
wrote 3-13% smaller AV1 records at equal latitude-weighted MAE, with the same or lighter error
tails, on the planes the codec codes with AV1 (ERA5 0.25 degree t2m at 0.4 K 719.6x against
674.5x; 1 degree t2m 52.9x against 46.9x; ``/work/exp/s24/tune_ssim_planes.py``). The decoder is
not involved: any AV1 stream decodes, and the AVIF container libavif writes is the same.

How: imagecodecs ships libavif as a shared library beside its extension (``imagecodecs.libs`` in
its Linux wheels). Loaded after imagecodecs' own AVIF module (which loads libaom), it takes the
calls below. The struct fields set by offset are those of libavif 1.x's public header
(avifEncoder: maxThreads +4, speed +8, quality +32; avifImage: yuvPlanes +24, yuvRowBytes +48,
matrixCoefficients +108), so ``available`` accepts libavif 1.x (soname 16) only, and only after a
self-check: a test image coded here without options must come out byte for byte as
``imagecodecs.avif_encode`` writes it. Where the library is not found (other platforms' wheels) or
the check fails, ``available`` is False and the caller codes with imagecodecs (records a few %
larger, decoded the same way).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

BITS = 12
ABI = 16            # libavif 1.x's soname: the struct layout below is part of it (fields are only appended)
YUV400 = 4          # AVIF_PIXEL_FORMAT_YUV400 (1.x: NONE, YUV444, YUV422, YUV420, YUV400)
PLANES_YUV = 1      # AVIF_PLANES_YUV
_ENCODER_MAX_THREADS, _ENCODER_SPEED, _ENCODER_QUALITY = 4, 8, 32
_IMAGE_Y_PLANE, _IMAGE_Y_ROW_BYTES, _IMAGE_MATRIX = 24, 48, 108   # _IMAGE_MATRIX: uint16 matrixCoefficients
MATRIX_BT601 = 6    # what imagecodecs' avif_encode writes (avif_coder's container carries it)
_INVALID_CODEC_SPECIFIC_OPTION = 19   # avifResult (1.x)


class _RWData(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("size", ctypes.c_size_t)]


@functools.lru_cache(maxsize=1)
def _library():
    """The bundled libavif 1.x with its functions declared, or None."""
    try:
        import imagecodecs

        imagecodecs.avif_version()   # loads imagecodecs' AVIF module, and with it libaom
        found = sorted((Path(imagecodecs.__file__).parent.parent / "imagecodecs.libs").glob("libavif*.so*"))
        if len(found) != 1 or f".so.{ABI}" not in found[0].name:   # (the struct offsets are this ABI's)
            return None
        lib = ctypes.CDLL(str(found[0]))
    except (ImportError, OSError, AttributeError):
        return None
    lib.avifVersion.restype = ctypes.c_char_p
    if not lib.avifVersion().decode().startswith("1."):
        return None
    lib.avifImageCreate.restype = ctypes.c_void_p
    lib.avifImageCreate.argtypes = [ctypes.c_uint32] * 3 + [ctypes.c_int]
    lib.avifImageAllocatePlanes.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.avifImageDestroy.argtypes = [ctypes.c_void_p]
    lib.avifEncoderCreate.restype = ctypes.c_void_p
    lib.avifEncoderDestroy.argtypes = [ctypes.c_void_p]
    lib.avifEncoderSetCodecSpecificOption.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.avifEncoderWrite.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(_RWData)]
    lib.avifRWDataFree.argtypes = [ctypes.POINTER(_RWData)]
    lib.avifResultToString.restype = ctypes.c_char_p
    lib.avifResultToString.argtypes = [ctypes.c_int]
    return lib


def _encode(lib, codes: np.ndarray, quality: int, speed: int, options) -> bytes:
    height, width = codes.shape
    image = lib.avifImageCreate(width, height, BITS, YUV400)
    if not image:
        raise MemoryError("libavif could not create an image")
    encoder = None
    out = _RWData()
    try:
        if lib.avifImageAllocatePlanes(image, PLANES_YUV) != 0:
            raise MemoryError("libavif could not allocate the image's plane")
        ctypes.c_uint16.from_address(image + _IMAGE_MATRIX).value = MATRIX_BT601
        plane = ctypes.c_void_p.from_address(image + _IMAGE_Y_PLANE).value
        row_bytes = ctypes.c_uint32.from_address(image + _IMAGE_Y_ROW_BYTES).value
        if not plane or row_bytes < 2 * width:
            raise RuntimeError(f"libavif's image has an unexpected layout (row bytes {row_bytes} for width {width})")
        buffer = (ctypes.c_uint8 * (row_bytes * height)).from_address(plane)
        rows = np.ndarray((height, row_bytes // 2), dtype=np.uint16, buffer=buffer)
        rows[:, :width] = codes
        encoder = lib.avifEncoderCreate()
        if not encoder:
            raise MemoryError("libavif could not create an encoder")
        for offset, value in ((_ENCODER_MAX_THREADS, 1), (_ENCODER_SPEED, speed), (_ENCODER_QUALITY, quality)):
            ctypes.c_int.from_address(encoder + offset).value = int(value)
        for key, value in options:
            if lib.avifEncoderSetCodecSpecificOption(encoder, key.encode(), value.encode()) != 0:
                raise ValueError(f"libavif refused the codec option {key}={value}")
        result = lib.avifEncoderWrite(encoder, image, ctypes.byref(out))
        if result == _INVALID_CODEC_SPECIFIC_OPTION:
            raise ValueError(f"libaom refused the codec options {options}")
        if result != 0:
            raise RuntimeError(f"libavif could not encode the image: {lib.avifResultToString(result).decode()}")
        return ctypes.string_at(out.data, out.size)
    finally:
        if out.data:
            lib.avifRWDataFree(ctypes.byref(out))
        if encoder:
            lib.avifEncoderDestroy(encoder)
        lib.avifImageDestroy(image)


def encode(codes: np.ndarray, quality: int, speed: int, options: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The AVIF file libavif writes for 2-D 12-bit ``codes`` (uint16, at most 4095) as a monochrome
    image at ``quality`` (0-100) and ``speed``, one thread, with libaom's ``options`` (key, value).
    Only where ``available()``."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.dtype != np.uint16:
        raise TypeError(f"expected 2-D uint16 codes, got {codes.dtype} {codes.shape} instead")
    if codes.size == 0 or int(codes.max()) >= 1 << BITS:
        raise ValueError(f"expected a non-empty image of codes below {1 << BITS}")
    if not available():
        raise RuntimeError("libavif with codec options is not available here (libavif_options.available())")
    return _encode(_library(), codes, quality, speed, options)   # (no lock: each call has its own encoder, as imagecodecs')


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the bundled libavif was found and writes a test image (no options) byte for byte
    as ``imagecodecs.avif_encode`` does."""
    lib = _library()
    if lib is None:
        return False
    from . import avif_coder   # (its psnr path is imagecodecs' encoder)

    rng = np.random.default_rng(0)
    test = (np.add.outer(np.arange(48) * 40, np.arange(80) * 25) + rng.integers(0, 64, (48, 80))).astype(np.uint16)
    try:
        return _encode(lib, test, 62, 6, ()) == avif_coder.avif_file(test, 62, 6, tune="psnr")
    except Exception:
        return False

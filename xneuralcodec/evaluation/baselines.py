"""Reference compressors for side-by-side numbers, kept out of the decode path.

Every reference compressor has one interface, ``Compressor``: called as
``compressor(plane, parameter) -> (compressed_nbytes, reconstruction)``, with separate
``encode`` / ``decode`` halves so that each can be timed (``time_compressor``). Its
parameter is the compressor's own knob: an absolute error bound (SZ3, ZFP, SPERR, EBCC,
linear quantisation + pcodec), a quantisation step (SPERR's step mode), a compression ratio
(EBCC's JPEG 2000 layer alone), a precision (bit rounding's kept mantissa bits), or nothing
(lossless zstd). ``ratio_at_mae`` finds, by bisection on that knob, the compression ratio
at a target area-weighted MAE, because the benchmark compares compressors at equal MAE.

Optional libraries are imported only when a compressor is built; ``reference_compressors``
returns those that work here and, for the others, why not (e.g. ``pip install pcodec``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time
from typing import Any, Callable

import numpy as np

from ..sphere.grid import LatLonGrid
from .metrics import weighted_errors

# -- one interface for every compressor ----------------------------------------------------

PARAMETER_KINDS = ("abs_bound", "step", "ratio", "precision", "quality", "lossless")


class TargetNotReached(ValueError):
    """The compressor's parameter range cannot reach the requested error."""


@dataclasses.dataclass(frozen=True)
class Compressor:
    """A compressor as the benchmark sees it: a name, one knob, and encode/decode halves.

    ``kind`` says what the knob is: "abs_bound" (absolute error bound, larger = coarser),
    "step" (a quantisation step that bounds no error, larger = coarser), "ratio" (a compression
    ratio the coder aims at, in ``parameter_range``, bounding no error, larger = coarser),
    "precision" (an int in ``parameter_range``, larger = finer), "quality" (a float in
    ``parameter_range``, larger = finer: the neural codec's rate) or "lossless" (ignored).
    ``decode(blob, shape, parameter)`` gets the knob too, as a Zarr codec's stored config
    would give it. Calling the compressor round-trips one plane.
    """

    name: str
    kind: str
    encode: Callable[[np.ndarray, Any], Any]
    decode: Callable[[Any, tuple, Any], np.ndarray]
    library: str = ""
    parameter_range: tuple[float, float] | None = None

    def __post_init__(self):
        if self.kind not in PARAMETER_KINDS:
            raise ValueError(f"expected a compressor kind in {PARAMETER_KINDS}, got {self.kind!r} instead")
        if self.kind in ("precision", "quality", "ratio") and (self.parameter_range is None or self.parameter_range[0] > self.parameter_range[1]):
            raise ValueError(f"expected a (lowest, highest) parameter_range for a precision compressor, got {self.parameter_range!r}")

    def __call__(self, plane, parameter=None) -> tuple[int, np.ndarray]:
        plane = _float32_plane(plane)
        blob = self.encode(plane, parameter)
        back = np.asarray(self.decode(blob, plane.shape, parameter), dtype=np.float32).reshape(plane.shape)
        return compressed_nbytes(blob), back


def compressed_nbytes(blob) -> int:
    """Size in bytes of what an encoder returned (bytes, bytearray or a numpy buffer)."""
    return memoryview(blob).nbytes


def _float32_plane(plane) -> np.ndarray:
    arr = np.asarray(plane)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"expected a floating-point plane, got dtype {arr.dtype} instead")
    if arr.ndim != 2:
        raise ValueError(f"expected one 2-D plane, got shape {arr.shape} instead")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _abs_bound(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected a number as absolute error bound, got {value!r} instead")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a positive finite absolute error bound, got {value!r} instead")
    return float(value)


def _require(module: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed ({exc}); pip install {pip_name}") from exc


# -- the reference compressors -------------------------------------------------------------

def _sz3_encode(plane: np.ndarray, abs_bound) -> bytes:
    from pysz import sz, szConfig, szErrorBoundMode

    cfg = szConfig(plane.shape)
    cfg.errorBoundMode = szErrorBoundMode.ABS
    cfg.absErrorBound = _abs_bound(abs_bound)
    out = sz.compress(plane, cfg)
    return out[0] if isinstance(out, tuple) else out


def _sz3_decode(blob, shape, abs_bound) -> np.ndarray:
    from pysz import sz

    back = sz.decompress(blob, np.float32, shape)
    back = back[0] if isinstance(back, tuple) else back
    return np.asarray(back).reshape(shape)


def sz3_compressor() -> Compressor:
    """SZ3 (prediction + error-bounded quantisation) through its native binding pysz."""
    _require("pysz", "pysz")
    return Compressor("sz3", "abs_bound", _sz3_encode, _sz3_decode, library="pysz")


def zstd_compressor(level: int = 3) -> Compressor:
    """Lossless zstd on the raw float32 bytes: the floor every lossy codec must beat."""
    from numcodecs import Zstd

    codec = Zstd(level=level)
    return Compressor(
        "zstd", "lossless",
        lambda plane, _: codec.encode(plane),
        lambda blob, shape, _: np.frombuffer(codec.decode(blob), np.float32).reshape(shape),
        library="numcodecs",
    )


def bitround_zstd_compressor(level: int = 3) -> Compressor:
    """Bit rounding (keep ``parameter`` mantissa bits, Klöwer et al. 2021) then zstd."""
    from numcodecs import BitRound, Zstd

    zstd = Zstd(level=level)
    bitround = functools.lru_cache(maxsize=None)(lambda keepbits: BitRound(keepbits=keepbits))

    def encode(plane, keepbits):
        if isinstance(keepbits, bool) or not isinstance(keepbits, (int, np.integer)):
            raise TypeError(f"expected an int number of mantissa bits to keep, got {keepbits!r} instead")
        return zstd.encode(bitround(int(keepbits)).encode(plane))

    def decode(blob, shape, keepbits):
        return np.frombuffer(zstd.decode(blob), np.float32).reshape(shape)

    return Compressor("bitround_zstd", "precision", encode, decode, library="numcodecs", parameter_range=(0, 23))


def quantize_pcodec_compressor() -> Compressor:
    """Uniform quantisation with step 2 x bound (error <= bound), integers coded by pcodec."""
    pcodec = _require("pcodec", "pcodec")

    def encode(plane, abs_bound):
        step = 2.0 * _abs_bound(abs_bound)
        q = np.rint(plane.astype(np.float64) / step)
        if np.abs(q).max() >= 2.0 ** 53:
            raise ValueError(f"absolute error bound {abs_bound} is too small for values up to {np.abs(plane).max()}")
        q = q.astype(np.int32 if np.abs(q).max() < 2.0 ** 31 - 1 else np.int64)
        return pcodec.standalone.simple_compress(q.ravel(), pcodec.ChunkConfig())

    def decode(blob, shape, abs_bound):
        q = pcodec.standalone.simple_decompress(blob)
        return (q.astype(np.float64) * (2.0 * _abs_bound(abs_bound))).astype(np.float32).reshape(shape)

    return Compressor("quantize_pcodec", "abs_bound", encode, decode, library="pcodec")


def zfp_compressor() -> Compressor:
    """ZFP in fixed-accuracy mode (zfpy==1.0.1, else numcodecs-wasm-zfp).

    Never ``pip install zfpy`` unpinned: 1.0.1.post0's version string breaks ``import numcodecs``.
    """
    try:
        import zfpy
    except ImportError:
        zfp = _require("numcodecs_wasm_zfp", "numcodecs-wasm-zfp (or zfpy==1.0.1)")
        codec = functools.lru_cache(maxsize=None)(lambda eb: zfp.Zfp(mode="fixed-accuracy", tolerance=eb))
        return Compressor(
            "zfp", "abs_bound",
            lambda plane, eb: codec(_abs_bound(eb)).encode(plane),
            lambda blob, shape, eb: np.asarray(codec(_abs_bound(eb)).decode(blob)).reshape(shape),
            library="numcodecs-wasm-zfp",
        )
    return Compressor(
        "zfp", "abs_bound",
        lambda plane, eb: zfpy.compress_numpy(plane, tolerance=_abs_bound(eb)),
        lambda blob, shape, eb: zfpy.decompress_numpy(blob).reshape(shape),
        library="zfpy",
    )


def _wasm_compressor(name: str, module: str, make_codec: Callable[[Any, float], Any]) -> Compressor:
    """A numcodecs-wasm codec with an absolute error bound (sandboxed, 2-4x slower than native)."""
    package = _require(module, module.replace("_", "-"))
    codec = functools.lru_cache(maxsize=None)(lambda eb: make_codec(package, eb))
    return Compressor(
        name, "abs_bound",
        lambda plane, eb: codec(_abs_bound(eb)).encode(plane),
        lambda blob, shape, eb: np.asarray(codec(_abs_bound(eb)).decode(blob)).reshape(shape),
        library=module.replace("_", "-"),
    )


def sperr_compressor() -> Compressor:
    """SPERR (wavelets + SPECK coding) with a point-wise error bound, via numcodecs-wasm."""
    return _wasm_compressor("sperr", "numcodecs_wasm_sperr", lambda m, eb: m.Sperr(mode="pwe", pwe=eb))


def ebcc_compressor() -> Compressor:
    """EBCC (JPEG 2000 base layer + error-bounded residual), via numcodecs-wasm."""
    return _wasm_compressor("ebcc", "numcodecs_wasm_ebcc", lambda m, eb: m.Ebcc(residual="absolute", error=eb))


def sperr_q_compressor() -> Compressor:
    """SPERR in its quantisation-step mode (no point-wise bound; what the codec uses for MAE targets)."""
    sperr = _wasm_compressor("sperr_q", "numcodecs_wasm_sperr", lambda m, q: m.Sperr(mode="q", q=q))
    return dataclasses.replace(sperr, kind="step")


def ebcc_j2k_compressor() -> Compressor:
    """EBCC's JPEG 2000 layer alone ("jpeg2000-only": no residual, no bound), at a compression
    ratio. At the paper's MAE targets it writes smaller files than EBCC with a bisected error
    bound on 0.25 and 1 degree t2m, u10 and v10 (ERA5 0.25 degree t2m at 0.4 K: ~494x against
    421x; /work/exp/ebcc_j2k.py), so the benchmarks count it as a peer of its own."""
    ebcc = _wasm_compressor("ebcc_j2k", "numcodecs_wasm_ebcc", lambda m, cr: m.Ebcc(residual="jpeg2000-only", base_cr=cr))
    return dataclasses.replace(ebcc, kind="ratio", parameter_range=(1.0, 1e5))


def avif_compressor(tune: str = "psnr") -> Compressor:
    """AV1 intra alone (libavif through imagecodecs), as a user would store a plane with it: 12-bit
    codes of ``(x - min) / unit``, the whole AVIF file plus min and unit (16 bytes); the knob is
    the unit ("step"). The codec's AV1 records (format v16) use the same coder on the plane
    minus its orographic prediction, maybe latitude-weighted, and keep only the AV1 payload, so
    this column shows what of the codec's gain is AV1's own. ``tune``: libaom's tune, "psnr"
    (its default, all imagecodecs' ``avif_encode`` writes) or "ssim" (what ``avifenc -a tune=ssim``
    writes; the codec's records use both from 0.24.0)."""
    _require("imagecodecs", "imagecodecs")
    from ..coding import avif_coder

    if tune not in avif_coder.tunes():
        raise ImportError(f"libaom's tune={tune} cannot be passed here (xneuralcodec.coding.libavif_options)")

    def encode(plane, unit):
        codes, low, unit, quality = avif_coder.codes_of(plane, _abs_bound(unit))
        return np.array([low, unit]).tobytes() + avif_coder.avif_file(codes, quality, tune=tune)

    def decode(blob, shape, unit):
        import imagecodecs

        low, unit = np.frombuffer(blob[:16], np.float64)
        return (np.asarray(imagecodecs.avif_decode(blob[16:])) * unit + low).reshape(shape)

    return Compressor("avif" if tune == "psnr" else f"avif_{tune}", "step", encode, decode,
                      library="imagecodecs (libavif, libaom, dav1d)")


def sz3_wasm_compressor() -> Compressor:
    """SZ3 again, through numcodecs-wasm: cross-checks pysz and runs where pysz does not."""
    return _wasm_compressor("sz3_wasm", "numcodecs_wasm_sz3", lambda m, eb: m.Sz3(eb_mode="abs", eb_abs=eb))


REFERENCE_COMPRESSORS: dict[str, Callable[[], Compressor]] = {
    "sz3": sz3_compressor,
    "zstd": zstd_compressor,
    "bitround_zstd": bitround_zstd_compressor,
    "quantize_pcodec": quantize_pcodec_compressor,
    "zfp": zfp_compressor,
    "sperr": sperr_compressor,
    "ebcc": ebcc_compressor,
    "sperr_q": sperr_q_compressor,
    "ebcc_j2k": ebcc_j2k_compressor,
    "avif": avif_compressor,
    "avif_ssim": functools.partial(avif_compressor, "ssim"),
    "sz3_wasm": sz3_wasm_compressor,
}


def reference_compressors(names=None) -> tuple[dict[str, Compressor], dict[str, str]]:
    """The named (default: all) reference compressors that work here, and why others don't.

    Each is built and round-trips a small smooth 32 x 64 plane once (EBCC needs 32 x 32 at least), so a library that imports but
    cannot run (a broken wheel, a missing WebAssembly runtime) is skipped with its reason.
    """
    names = list(REFERENCE_COMPRESSORS) if names is None else list(names)
    unknown = [n for n in names if n not in REFERENCE_COMPRESSORS]
    if unknown:
        raise ValueError(f"expected compressor names from {sorted(REFERENCE_COMPRESSORS)}, got {unknown} instead")
    lat, lon = np.meshgrid(np.linspace(-1.5, 1.5, 32), np.linspace(0, 6.2, 64), indexing="ij")
    probe = (280 + 20 * np.cos(lat) * np.sin(lon)).astype(np.float32)
    available, skipped = {}, {}
    for name in names:
        try:
            compressor = REFERENCE_COMPRESSORS[name]()
            parameter = {"abs_bound": 0.5, "step": 0.5, "ratio": 10.0, "precision": compressor.parameter_range[-1] if compressor.parameter_range else None}.get(compressor.kind)
            _, back = compressor(probe, parameter)
            if not np.isfinite(back).all():
                raise ValueError("round trip returned non-finite values")
        except ImportError as exc:
            skipped[name] = str(exc)
        except Exception as exc:  # a compressor that imports but cannot run is skipped, not fatal
            skipped[name] = f"failed a smoke test: {type(exc).__name__}: {exc}"
        else:
            available[name] = compressor
    return available, skipped


# -- rate and error at a parameter, at a target MAE, and timing -----------------------------

def _stack(planes, grid: LatLonGrid) -> np.ndarray:
    arr = np.asarray(planes)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"expected floating-point planes, got dtype {arr.dtype} instead")
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (grid.nlat, grid.nlon):
        raise ValueError(f"expected a plane or a stack of planes on the {grid.nlat} x {grid.nlon} grid, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32).reshape(-1, grid.nlat, grid.nlon)


def evaluate_point(compressor: Compressor, planes, grid: LatLonGrid, parameter=None) -> dict:
    """Compression ratio (float32 bytes / compressed bytes) and errors of every plane at one parameter.

    Each plane is its own chunk, as the codec stores them. The key ``reconstruction`` holds
    the decoded planes for further metrics.
    """
    planes = _stack(planes, grid)
    back = np.empty_like(planes)
    size = 0
    for i, plane in enumerate(planes):
        n, back[i] = compressor(plane, parameter)
        size += n
    return {"parameter": parameter, "nbytes": size, "ratio": planes.nbytes / size,
            **weighted_errors(planes, back, grid), "reconstruction": back}


def ratio_at_mae(compressor: Compressor, planes, grid: LatLonGrid, target_mae: float, iterations: int = 10) -> dict:
    """The compressor's ratio at (just under) ``target_mae``, searching its own parameter.

    Error bounds are bisected in log space over a bracket around the target (``iterations``
    halvings of a 64x span: 10 give the bound to 0.4%); the result is the coarsest bound
    tried whose MAE is <= target (``method`` "bisection"). Integer precisions (bit rounding,
    the neural quality) are searched for the two neighbours bracketing the target, and the
    ratio is interpolated linearly in log(ratio) vs log(MAE) between them (``method``
    "interpolated"); errors and ``reconstruction`` are those of the finer neighbour, which
    meets the target. Lossless compressors meet any target. Raises ``TargetNotReached``
    when even the finest setting misses the target.
    """
    if isinstance(target_mae, bool) or not isinstance(target_mae, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected a number as target MAE, got {target_mae!r} instead")
    if not (math.isfinite(target_mae) and target_mae > 0):
        raise ValueError(f"expected a positive finite target MAE, got {target_mae!r} instead")
    planes = _stack(planes, grid)
    if compressor.kind == "lossless":
        return {**evaluate_point(compressor, planes, grid), "target_mae": target_mae, "method": "lossless"}
    if compressor.kind == "precision":
        return _interpolated_at_mae(compressor, planes, grid, target_mae)
    if compressor.kind == "quality":
        return _bisected_quality_at_mae(compressor, planes, grid, target_mae, iterations)
    if compressor.kind == "ratio":
        return _bisected_ratio_at_mae(compressor, planes, grid, target_mae, iterations)
    return _bisected_at_mae(compressor, planes, grid, target_mae, iterations)


def _bisected_ratio_at_mae(compressor, planes, grid, target_mae, iterations) -> dict:
    """A "larger = coarser" ratio over ``parameter_range``: bisected in log space for the largest
    ratio measured whose MAE meets the target (``iterations`` + 10 halvings: the range spans
    up to 2^17, so this reaches the same 0.4% as the error bounds' bisection)."""
    lo, hi = compressor.parameter_range
    best = evaluate_point(compressor, planes, grid, float(lo))
    if best["mae"] > target_mae:
        raise TargetNotReached(f"{compressor.name} misses MAE {target_mae:g} even at ratio {lo:g} (MAE {best['mae']:g})")
    point = evaluate_point(compressor, planes, grid, float(hi))
    if point["mae"] <= target_mae:
        return {**point, "target_mae": target_mae, "method": "bisection"}
    for _ in range(iterations + 10):
        mid = math.sqrt(lo * hi)
        point = evaluate_point(compressor, planes, grid, mid)
        if point["mae"] <= target_mae:
            lo = mid
            if point["ratio"] > best["ratio"]:
                best = point
        else:
            hi = mid
    return {**best, "target_mae": target_mae, "method": "bisection"}


def _bisected_at_mae(compressor, planes, grid, target_mae, iterations) -> dict:
    def at(bound):
        return evaluate_point(compressor, planes, grid, float(bound))

    hi = 4.0 * target_mae
    point = at(hi)
    for _ in range(8):  # a bound far above the target can still meet it (e.g. EBCC's base layer)
        if point["mae"] > target_mae:
            break
        hi *= 8.0
        point = at(hi)
    else:
        return {**point, "target_mae": target_mae, "method": "bisection"}
    lo = hi / 64.0
    best = at(lo)
    for _ in range(8):
        if best["mae"] <= target_mae:
            break
        hi, lo = lo, lo / 64.0
        best = at(lo)
    else:
        raise TargetNotReached(f"{compressor.name} misses MAE {target_mae:g} even at bound {lo:g} (MAE {best['mae']:g})")
    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        point = at(mid)
        if point["mae"] <= target_mae:
            lo, best = mid, point
        else:
            hi = mid
    return {**best, "target_mae": target_mae, "method": "bisection"}


def _bisected_quality_at_mae(compressor, planes, grid, target_mae, iterations) -> dict:
    """A continuous "larger = finer" knob: bisection for the coarsest measured setting that meets the target."""
    coarse, fine = compressor.parameter_range
    best = evaluate_point(compressor, planes, grid, fine)
    if best["mae"] > target_mae:
        raise TargetNotReached(
            f"{compressor.name} misses MAE {target_mae:g} even at its finest setting {fine} (MAE {best['mae']:g})")
    point = evaluate_point(compressor, planes, grid, coarse)
    if point["mae"] <= target_mae:
        return {**point, "target_mae": target_mae, "method": "coarsest setting meets the target"}
    for _ in range(iterations):
        mid = 0.5 * (coarse + fine)
        point = evaluate_point(compressor, planes, grid, mid)
        if point["mae"] <= target_mae:
            fine, best = mid, point
        else:
            coarse = mid
    return {**best, "target_mae": target_mae, "method": "bisection"}


def _interpolated_at_mae(compressor, planes, grid, target_mae) -> dict:
    lowest, highest = compressor.parameter_range
    cache = {}

    def at(p):
        if p not in cache:
            cache[p] = evaluate_point(compressor, planes, grid, p)
        return cache[p]

    if at(highest)["mae"] > target_mae:
        raise TargetNotReached(
            f"{compressor.name} misses MAE {target_mae:g} even at its finest setting {highest} (MAE {at(highest)['mae']:g})"
        )
    if at(lowest)["mae"] <= target_mae:
        return {**at(lowest), "target_mae": target_mae, "method": "coarsest setting meets the target"}
    coarse, fine = lowest, highest  # coarse misses, fine meets
    while fine - coarse > 1:
        mid = (coarse + fine) // 2
        if at(mid)["mae"] <= target_mae:
            fine = mid
        else:
            coarse = mid
    a, b = at(coarse), at(fine)
    if a["mae"] > 0 and b["mae"] > 0 and a["mae"] != b["mae"]:
        t = (math.log(target_mae) - math.log(b["mae"])) / (math.log(a["mae"]) - math.log(b["mae"]))
        ratio = math.exp(math.log(b["ratio"]) + t * (math.log(a["ratio"]) - math.log(b["ratio"])))
    else:
        ratio = b["ratio"]
    return {**b, "ratio": ratio, "ratio_at_parameter": b["ratio"], "bracket": [coarse, fine],
            "target_mae": target_mae, "method": "interpolated"}


def time_compressor(compressor: Compressor, planes, parameter=None, repeats: int = 5) -> dict:
    """Encode and decode throughput in MB/s of float32 input (median over ``repeats``).

    One untimed warm-up round trip first, so one-off costs (loading a model, compiling
    WebAssembly) do not count. Each repeat times encoding all planes, then decoding them.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"expected repeats as an int >= 1, got {repeats!r} instead")
    planes = np.asarray(planes, dtype=np.float32)
    planes = np.ascontiguousarray(planes.reshape((-1,) + planes.shape[-2:]))
    compressor(planes[0], parameter)
    encode_s, decode_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        blobs = [compressor.encode(plane, parameter) for plane in planes]
        t1 = time.perf_counter()
        for blob in blobs:
            compressor.decode(blob, planes.shape[1:], parameter)
        t2 = time.perf_counter()
        encode_s.append(t1 - t0)
        decode_s.append(t2 - t1)
    megabytes = planes.nbytes / 1e6
    enc, dec = statistics.median(encode_s), statistics.median(decode_s)
    return {"parameter": parameter, "repeats": repeats, "encode_s": enc, "decode_s": dec,
            "encode_mb_s": megabytes / enc, "decode_mb_s": megabytes / dec}

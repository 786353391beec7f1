"""Error-bounded conventional coders for whole planes (format v7 "conventional" planes).

Why: at tight targets and hard bounds the network's record (latents plus a correction of
what it misses) is larger than what SZ3 or SPERR write for the same plane, and a neural
base does not help them either: coding the residual of a v4 or v5 reconstruction with SPERR
cost 10-55% more than SPERR on the plane itself on all four planes measured at half the
paper targets (issue 16, docs/tight-bounds.md). So for ``max_abs_error`` / ``target_mae``
the encoder also codes each plane with these coders and keeps whichever record is smallest;
the plane then costs at most what the conventional coder alone costs, plus the record.

The coders are the WebAssembly builds of numcodecs-wasm (declared dependencies, not vendored),
and since format v12 the project's own interpolation coder (``interpolation_coder``: numpy and
constriction): the same bytes decode to the same values on every machine. With a bound each is
used in its absolute-bound mode; for an MAE target alone SPERR may use its quantisation step
and EBCC its JPEG 2000 layer at a compression ratio (0.16.0), and a plane may be coded
latitude-weighted (``latitude_weighting``, format v13). Every candidate is decoded here and
checked against the bound and the MAE target before it is accepted, so a coder's own rounding
can never break the promise.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Callable

import numpy as np

from . import avif_coder, concurrent_probes, interpolation_coder, latitude_weighting, orographic_prediction
from .latitude_weighting import LatitudeWeighting
from .orographic_prediction import OrographicPrediction
from .output import to_dtype

# coder ids in plane records: append only (EBCC since v8, SPERR_Q v9, INTERP v12, AVIF v16, INTERP_CLAMPED v17;
# 7 is the last id the coder byte's 3 bits hold: a further coder needs a format change there)
SZ3, SPERR, EBCC, SPERR_Q, INTERP, AVIF, INTERP_CLAMPED = 1, 2, 3, 4, 5, 6, 7
NAMES = {SZ3: "sz3", SPERR: "sperr", EBCC: "ebcc", SPERR_Q: "sperr-q", INTERP: "interp", AVIF: "avif",
         INTERP_CLAMPED: "interp-clamped"}
INTERPOLATION = (INTERP, INTERP_CLAMPED)
# The interpolation coder (format v12) joins them: on all 15 held-out planes at 2x the paper's
# targets it wrote 4-48% fewer bytes than native SZ3 3.4 (ratio 1.04-1.92x native SZ3's;
# /work/exp/interp_real2.py, 0.15.0).
# SZ3 stays: near lossless (bound 1e-12 on a float64 plane) every code needs ~30 bits, and SZ3's
# stream was 39% smaller than the interpolation coder's there (and smaller than the lossless record).
DEFAULT_CODERS = (SPERR, INTERP_CLAMPED, SZ3)
# effort="max" adds EBCC (JPEG 2000 base + bounded residual): up to ~20% smaller than SPERR at
# tight targets on 1 and 0.25 degree grids, but ~8 s per encode of a 0.25 degree plane
MAX_EFFORT_CODERS = (SPERR, INTERP_CLAMPED, SZ3, EBCC)
# Without a max_abs_error, SPERR runs in its quantisation-step mode (SPERR_Q, format v9): no
# outlier pass that holds every point within a bound, which an MAE target does not ask for.
# At equal latitude-weighted MAE its records were 1-4% smaller than the point-wise-error
# mode's on 11 of 12 held-out plane/target cases (ERA5 0.25 and 1 degree t2m, u10, msl, tp,
# GFS t and w; +0.6% on ERA5 msl at 100 Pa), and each probe encodes ~25% faster
# (/work/exp/probe_trace.py, 0.11.0). Decoding is the same SPERR decoder.
UNBOUNDED_SPERR = {SPERR: SPERR_Q}
# Without a max_abs_error the encoder also tries EBCC's JPEG 2000 layer alone (EBCC's
# "jpeg2000-only" mode, searched by its compression ratio): an EBCC stream that EBCC's decoder
# reads like any other, so its records name EBCC (no format change). At the paper's MAE targets
# it wrote the smallest files of all coders on ERA5 0.25 degree t2m (~494x at 0.4 K, SPERR's step
# mode 370x, EBCC with a bisected bound 421x) and 1 degree t2m and u10 (+10%, +16% on SPERR's
# step mode), at ~0.27 s a probe on a 0.25 degree plane (/work/exp/ebcc_j2k.py, j2k_shapes.py;
# 0.16.0). It goes after SPERR's step mode, whose record gives its first ratio.
J2K = 103   # an encoder-side setting, never in a record (RECORD_CODER)
# likewise AV1's settings (``avif_coder``): AVIF itself codes at avif_coder.SPEED and libaom's first
# tune (ssim); AVIF_PROBE at avif_coder.PROBE_SPEED, the speed its unit is searched at; the _PSNR pair
# likewise with libaom's default tune
AVIF_PROBE, AVIF_PSNR, AVIF_PSNR_PROBE = 106, 107, 108
AVIF_SETTINGS = {AVIF: (avif_coder.SPEED, "ssim"), AVIF_PROBE: (avif_coder.PROBE_SPEED, "ssim"),
                 AVIF_PSNR: (avif_coder.SPEED, "psnr"), AVIF_PSNR_PROBE: (avif_coder.PROBE_SPEED, "psnr")}
AVIF_RECORD_OF_PROBE = {AVIF_PROBE: AVIF, AVIF_PSNR_PROBE: AVIF_PSNR}
RECORD_CODER = {J2K: EBCC, AVIF_PROBE: AVIF, AVIF_PSNR: AVIF, AVIF_PSNR_PROBE: AVIF}
J2K_FIRST_RATIO = 1.15   # first probe: this x the ratio of the best record so far
# MAE ~ ratio^0.6 (ERA5 0.25 degree t2m) to ^0.75 (1 degree t2m) near the paper's targets: the
# second probe's step assumes the middle (the others assume MAE ~ bound)
FIRST_SLOPE = {J2K: 0.65}
# From 0.21.0 (format v16) AV1's intra coder follows (``avif_coder``; its knob: the plane's unit
# per 12-bit code): at the paper's targets it wrote the smallest records on ERA5 0.25 and 1
# degree t2m and 1 degree msl (module docstring there), at ~0.7 s a probe on a 0.25 degree plane.
# MAE targets only: it holds no bound. From 0.22.0, on planes of PAIRED_FROM_POINTS or more, the unit
# is searched at avif_coder.PROBE_SPEED (0.04 s a probe on a 0.25 degree plane, 0.6 s at SPEED), then the
# record at avif_coder.SPEED by a search of AVIF_FINAL_STEPS probes from the unit found (``search``'s
# end): at one unit the two speeds' MAE and tails differ by a few %. Smaller planes search at SPEED alone.
# From 0.24.0 it is searched with libaom's tune=ssim, then with its default (psnr), and the smaller record
# wins (``avif_coder.TUNES``): ssim's was 3-12% smaller on ERA5 0.25 and 1 degree t2m, u10 and v10 at the
# paper's targets, psnr's on 1 degree msl at 100 Pa (ssim's tails are heavier there). Where libaom's options
# cannot be passed (``avif_coder.tunes``) psnr alone is searched. A probe search's record at SPEED is
# searched only where the probe's size, over PROBE_BYTES, may beat the best record so far (psnr's rarely).
# From 0.24.1 each AV1 setting is coded once per search (``best_candidate``'s coded_avif): the same records.
UNBOUNDED_EXTRA = {SPERR_Q: (SPERR_Q, J2K, AVIF_PROBE, AVIF_PSNR_PROBE)}
# 6: with 4, ERA5 0.25 degree t2m at 0.2 K (a unit finer than 12 bits allow: the knob raises the quality
# in steps, ~6% in size each) ended on JPEG 2000's 160.2x; with 6, on AV1's 164.9x, as 0.21.0's search
AVIF_FINAL_STEPS = 6
# A probe at PROBE_SPEED writes about this x the record's bytes at the same unit (ERA5 0.25 degree t2m:
# 1.38 at 0.4 K, 1.30 at 0.2 K): its size is divided by it before HOPELESS compares it with the best record
PROBE_BYTES = {AVIF_PROBE: 1.3, AVIF_PSNR_PROBE: 1.4}   # (tune=ssim: 1.27-1.35, /work/exp/s25/timing.py)
EBCC_MIN_SIDE = 32    # EBCC refuses planes smaller than 32 x 32
# AVIF's first unit: 0.2 x the target (ERA5 0.25 degree t2m: units 0.05-0.08 K gave MAE 0.35-0.43 K, MAE
# ~ unit^0.5; but its tails, which may count too (``best_candidate``), grow ~ unit^1.5: the first step assumes 1)
AVIF_UNIT_PER_MAE = 0.2
# first guess of bound / MAE per coder (measured on ERA5 t2m: SZ3 MAE ~ 0.28 x bound,
# SPERR ~ 0.16 x bound, EBCC ~ 0.06-0.14 x bound); the search corrects it from the measured MAE
BOUND_PER_MAE = {SZ3: 3.0, SPERR: 5.0, EBCC: 10.0, SPERR_Q: 8.0, INTERP: 3.0, INTERP_CLAMPED: 3.0,
                 **dict.fromkeys(AVIF_SETTINGS, AVIF_UNIT_PER_MAE)}
SEARCH_STEPS = 7
# EBCC (effort="max" only) gets more: its MAE is a staircase of the bound, and 7 probes left it
# 3% under the target on ERA5 1 degree v10 at 0.25 m/s (20.0x; 10 probes: 20.5x, as the peer's
# 18-step bisection), at ~1.2-8 s a probe on 1 and 0.25 degree planes
# AV1 too: its first unit is a guess that fits smooth planes (ERA5 t2m, msl); on 1 degree v10 at 0.5 m/s
# the unit that meets the target is 6x finer, and 7 probes ended short of it (53.6x, JPEG 2000's; 10: 61.1x)
SEARCH_STEPS_OF = {EBCC: 10, **dict.fromkeys(AVIF_SETTINGS, 10)}
HOPELESS = 1.3        # stop a coder's search once a probe near the target is this much larger than the best so far
BRACKET_MARGIN = 1.05  # a secant step within 5% of either end of the bracket bisects it instead
NEAR_TARGET = 0.7     # ... "near": MAE at least this share of the target (EBCC's first probe may sit far below it)
CLOSE_ENOUGH = 0.99   # stop once the MAE is within 1% under the target
# Bound searches on planes of PAIRED_FROM_POINTS or more probe in rounds of two
# (``concurrent_probes``, ``_next_round``): the first round the start and SECOND_PROBE x it
# (SECOND_PROBE_INFORMED where the start comes from a record in hand). Smaller planes probe
# one bound at a time: their probes take milliseconds, and a second one is mostly wasted.
PAIRED_FROM_POINTS = 2 ** 18
SECOND_PROBE, SECOND_PROBE_INFORMED = 2.0, 1.25
PAIR_SPREAD = 0.01


def coders_for(effort: str, max_abs_error: float | None = None) -> tuple[int, ...]:
    """The coders the encoder tries at an ``effort`` (options.py), for a chunk with or
    without a hard bound."""
    coders = MAX_EFFORT_CODERS if effort == "max" else DEFAULT_CODERS
    if max_abs_error is not None:
        return coders
    unbounded = (UNBOUNDED_SPERR.get(c, c) for c in coders)
    extra = {} if effort == "fast" else UNBOUNDED_EXTRA   # "fast": without the JPEG 2000 layer's probes
    return tuple(k for c in unbounded for k in extra.get(c, (c,)))


def _codec(coder: int, bound: float):
    """A new instance of ``coder`` at ``bound`` (~1 ms; the compiled module is shared).

    Why not cached per bound (as before 0.18.0): an instance keeps the WebAssembly memory its
    largest plane grew, ~19 MB for a 0.25 degree plane, and a bound search meets a new bound at
    every probe (20 JPEG 2000 probes: +375 MB resident); nor may two threads share one
    (``concurrent_probes``)."""
    if coder == SZ3:
        import numcodecs_wasm_sz3

        return numcodecs_wasm_sz3.Sz3(eb_mode="abs", eb_abs=bound)
    if coder == SPERR:
        import numcodecs_wasm_sperr

        return numcodecs_wasm_sperr.Sperr(mode="pwe", pwe=bound)
    if coder == EBCC:
        import numcodecs_wasm_ebcc

        return numcodecs_wasm_ebcc.Ebcc(residual="absolute", error=bound)
    if coder == SPERR_Q:
        import numcodecs_wasm_sperr

        return numcodecs_wasm_sperr.Sperr(mode="q", q=bound)
    if coder == J2K:   # ``bound``: the compression ratio
        import numcodecs_wasm_ebcc

        return numcodecs_wasm_ebcc.Ebcc(residual="jpeg2000-only", base_cr=bound)
    raise ValueError(f"not a valid xneuralcodec chunk: unknown conventional coder {coder}")


_decoders = threading.local()


def _decoder(coder: int):
    """This thread's decoding instance of ``coder``: the decoders read every setting from the
    stream, so one per coder and thread decodes every record, whatever bound wrote it."""
    cached = _decoders.__dict__.setdefault("by_coder", {})
    if coder not in cached:
        cached[coder] = _codec(coder, DECODER_BOUND)
    return cached[coder]


def _discard() -> None:
    """Forget this thread's decoding instances. Why: a WebAssembly trap (an abort inside SZ3 on
    damaged bytes, say) can leave its instance unusable, and every later chunk of that coder in
    the process then failed to decode (measured in 0.13.0: after one damaged SZ3 stream, 268 of
    300 valid ones). Fresh instances decode normally."""
    _decoders.__dict__.pop("by_coder", None)


def encode(coder: int, plane: np.ndarray, bound: float) -> bytes:
    """A finite (nlat, nlon) plane in its own dtype -> the coder's bytes at ``bound`` (J2K: at
    that compression ratio; AVIF: at that unit per code)."""
    if coder in INTERPOLATION:
        return interpolation_coder.encode(plane, bound, coder == INTERP_CLAMPED)
    if coder in AVIF_SETTINGS:
        return avif_coder.encode(plane, bound, *AVIF_SETTINGS[coder])
    values = np.ascontiguousarray(plane[None] if coder in (EBCC, J2K) else plane)   # EBCC codes (depth, h, w)
    return bytes(np.asarray(_codec(coder, float(bound)).encode(values)).view(np.uint8))


def decode(coder: int, blob: bytes, shape: tuple, dtype, short_frame: bool = False, power: bool = False,
           latitude: LatitudeWeighting | None = None, orography: OrographicPrediction | None = None) -> np.ndarray:
    """The coder's bytes (``short_frame``: without the frame ``coder_framing`` rebuilds; ``power``:
    of the plane's 16/17 power; ``latitude``: of the latitude-weighted plane; ``orography``: of the
    plane minus its orographic prediction) -> float64 plane of ``shape``; damaged bytes raise ValueError."""
    from . import coder_framing   # (it imports the coder ids from here)

    if short_frame:
        blob = coder_framing.rebuild(coder, blob, shape, dtype)
    elif coder == EBCC:
        coder_framing.check_ebcc(blob, shape, dtype)   # a forged JPEG 2000 header never reaches the decoder
    values = _unweighted(_decode_values(coder, blob, shape, dtype).astype(np.float64), latitude, orography)
    return from_power(values) if power else values


def _unweighted(values: np.ndarray, latitude: LatitudeWeighting | None,
                orography: OrographicPrediction | None) -> np.ndarray:
    """The coder's float64 values back on the plane's scale: the latitude weighting undone, then the
    orographic prediction added."""
    if latitude is not None:
        values = latitude_weighting.inverse(values, latitude)
    if orography is not None:
        values = orographic_prediction.inverse(values, orography)
    return values


# The decoders read every setting from the stream and ignore the instance's bound (checked for
# all four coders).
DECODER_BOUND = 1.0


def _decode_values(coder: int, blob: bytes, shape: tuple, dtype) -> np.ndarray:
    """As ``decode``, in the chunk's own ``dtype`` (what the coder wrote)."""
    if coder not in NAMES:
        raise ValueError(f"not a valid xneuralcodec chunk: unknown conventional coder {coder}")
    if coder in INTERPOLATION:   # numpy and constriction: nothing to sandbox, and its errors are ValueError already
        return interpolation_coder.decode(blob, shape, dtype, clamped=coder == INTERP_CLAMPED)
    if coder == AVIF:     # its errors are ValueError already
        return avif_coder.decode(blob, shape, dtype)
    try:
        values = np.asarray(_decoder(coder).decode(np.frombuffer(blob, np.uint8)))
    except Exception as exc:  # the wasm codecs report damage in their own types
        _discard()
        raise ValueError(f"not a valid xneuralcodec chunk: {NAMES[coder]} plane does not decode ({exc})") from exc
    if values.size != int(np.prod(shape)) or values.dtype != dtype:
        raise ValueError(f"not a valid xneuralcodec chunk: {NAMES[coder]} plane decodes to {values.dtype} "
                         f"{values.shape}, expected {np.dtype(dtype)} {tuple(shape)}")
    return values.reshape(shape)


def clip_range(plane: np.ndarray, finite: np.ndarray) -> tuple[float, float] | None:
    """The plane's own (min, max) over its finite points, in its dtype (so stored exactly).

    Why: clipping a decoded value into the range the original spans never moves it away from
    the original, and a wavelet or prediction coder overshoots the range wherever a field sits
    at its floor or ceiling: negative precipitation around dry areas, humidity above its
    saturation value. Removing that error lets the bound search reach an MAE target at a coarser
    bound: on ERA5 1 degree tp at the paper's target, SPERR's step mode 12.0x -> 13.3x (and its
    decoded precipitation is never negative)."""
    values = plane[finite]
    if values.size == 0:
        return None
    return float(values.min()), float(values.max())


def power_applies(plane: np.ndarray, finite: np.ndarray) -> bool:
    """A field with its floor at zero (precipitation, cloud, snow): its finite values are >= 0,
    with zeros among them and some above."""
    values = plane[finite]
    return bool(values.size) and float(values.min()) == 0.0 and float(values.max()) > 0.0


POWER = 16 / 17   # the exponent of ``to_power``
# A powered candidate is kept only if at most this share of the plane's points is off by more
# than TAIL_FACTOR x the MAE target (issue 15's bar for error tails).
TAIL_FACTOR, TAIL_SHARE = 5.0, 0.005
# With a target_mae alone, on a global grid, the coders also get the plane minus its orographic
# prediction wherever the terrain explains enough of it, and only that where it explains much
# (``orographic_prediction``, format v14).
PREDICT_OROGRAPHY = True


def to_power(plane: np.ndarray) -> np.ndarray:
    """x -> x^(16/17), in the plane's dtype (encoder side; only for ``power_applies`` planes).

    Why: a field with a floor at zero is skewed: most of the area is dry or nearly so, a little
    carries large values. A wavelet coder spends a uniform error budget; under a power below 1
    its errors shrink where the field is small (most of the area) and grow where it is large,
    which lowers the area-weighted MAE for the same bytes, and moves error into the heaviest
    rain. On ERA5 1 degree tp (SPERR's step mode with the clip, at equal MAE; share of points off
    by more than 5x the target) at the paper's target: p = 1 13.28x, 0.25%; 16/17 13.88x, 0.45%;
    8/9 14.35x, 0.76%; 2/3 15.56x, 2.46% (docs/tight-bounds.md). 16/17 is the strongest power
    whose tails stay under TAIL_SHARE there, and its inverse needs only exact IEEE operations."""
    return np.power(plane.astype(np.float64), POWER).astype(plane.dtype)


def from_power(values: np.ndarray) -> np.ndarray:
    """The decoder's inverse of ``to_power`` in float64: y -> y^(17/16) = y * sqrt(sqrt(sqrt(sqrt(y)))),
    negatives as 0. Square roots and products are correctly rounded in IEEE 754, so every machine
    decodes the same values (a general power function need not be)."""
    y = np.maximum(values, 0.0)
    return y * np.sqrt(np.sqrt(np.sqrt(np.sqrt(y))))


def _next_bound(points: list[tuple[float, float]], target: float, first_slope: float = 1.0) -> float:
    """Next bound to try for an MAE just under ``target``: a straight line in (log bound,
    log MAE) through two (bound, MAE) ``points`` (MAE grows slower than the bound), or from one
    point MAE taken as bound^first_slope; one step moves the bound by 2x at most."""
    goal = 0.5 * (1 + CLOSE_ENOUGH) * target
    bound, mae = points[-1]
    slope = first_slope
    if len(points) >= 2:
        (b0, m0), (b1, m1) = points[-2], points[-1]
        if b0 != b1 and m0 > 0 and m1 > 0 and m0 != m1:
            slope = float(np.clip(np.log(m1 / m0) / np.log(b1 / b0), 0.2, 2.0))
    step = (goal / max(mae, 1e-300)) ** (1.0 / slope)
    return bound * float(np.clip(step, 0.5, 2.0))


def _bracketed(bound: float, tried: list[tuple[float, float]], target: float) -> float:
    """``bound`` if it lies well inside the bracket of the largest bound that met the target and
    the smallest that missed it, else the bracket's geometric midpoint: coders whose MAE is a
    staircase of the bound (EBCC's residual layer) make the secant overshoot or creep along a step."""
    met = [b for b, m in tried if m <= target]
    missed = [b for b, m in tried if m > target]
    if not (met and missed):
        return bound
    lo, hi = max(met), min(missed)
    if lo * BRACKET_MARGIN < bound < hi / BRACKET_MARGIN:
        return bound
    return float(np.sqrt(lo * hi))


def _next_round(tried: list[tuple[float, float]], target: float, ceiling: float, first_slope: float,
                paired: bool) -> list[float]:
    """The bounds the next round probes (ascending). One at a time: the secant through the last
    two probes, bisecting the bracket where it lands near one of its ends (``_bracketed``).
    Two at a time: the secant through the bracket's ends where one is known (else through the
    two probes whose MAE came nearest the target), and (1 + PAIR_SPREAD)^2 from it on the side
    the curve's bend puts the target: two chances to land within CLOSE_ENOUGH of the target and
    a tight bracket if neither does. log MAE is concave in log bound for JPEG 2000's ratio and
    SPERR's step (ERA5 0.25 degree t2m: slope 0.62 then 0.41 over ratios 146-182), so the
    secant overshoots between bracket ends and falls short beyond them. Where the estimate lies
    near an end of the bracket (a staircase coder, or a curved one), one probe bisects the
    bracket instead, and a bracket already that narrow is split in three."""
    if not paired:
        return [_bracketed(min(ceiling, _next_bound(tried[-2:], target, first_slope)), tried, target)]
    goal = 0.5 * (1 + CLOSE_ENOUGH) * target
    met = [p for p in tried if p[1] <= target]
    missed = [p for p in tried if p[1] > target]
    if met and missed:
        points = [max(met), min(missed)]
    else:
        points = sorted(tried, key=lambda p: abs(np.log(max(p[1], 1e-300) / goal)))[:2][::-1]
    estimate = min(ceiling, _next_bound(points, target, first_slope))
    lo = max(met)[0] if met else 0.0
    hi = min(missed)[0] if missed else np.inf
    if met and missed and hi / lo <= (1 + PAIR_SPREAD) ** 3:
        bounds = [lo * (hi / lo) ** (1 / 3), lo * (hi / lo) ** (2 / 3)]
    elif met and missed and not lo * BRACKET_MARGIN < estimate < hi / BRACKET_MARGIN:
        bounds = [min(max(estimate, lo * (1 + PAIR_SPREAD)), hi / (1 + PAIR_SPREAD)), float(np.sqrt(lo * hi))]
    elif met and missed:   # the secant of a concave curve (log MAE over log bound) overshoots inside
        bounds = [estimate / (1 + PAIR_SPREAD) ** 2, estimate]
    else:                  # ... and falls short outside
        bounds = [estimate, min(ceiling, estimate * (1 + PAIR_SPREAD) ** 2)]
    done = {b for b, _ in tried}
    return sorted({b for b in bounds if lo < b < hi and b not in done})


def _bracket_may_win(missed_sizes: dict, bound: float, best_bytes: float) -> bool:
    """Whether a coarser probe that missed the target wrote less than ``best_bytes``: the record
    then lies between it and the probe at ``bound``, and may still win (0.22.0). Why: HOPELESS
    assumes sizes fall slowly near the target, but where AV1's knob raises the quality they fall
    fast. ERA5 1 degree t2m at 0.4 K: AV1 probes wrote 7137 bytes at 0.77 x the target and 4590 at
    1.04 x, against JPEG 2000's 5338; the search stopped on the first and kept JPEG 2000."""
    return any(b > bound and size < best_bytes for b, size in missed_sizes.items())


@dataclasses.dataclass
class Candidate:
    coder: int
    bound: float
    blob: bytes               # what the record stores: the short frame where ``short_frame``
    short_frame: bool = False  # format v11: the numcodecs-wasm frame is left to the decoder (coder_framing.py)
    clip: tuple[float, float] | None = None   # format v11: decoded values are clipped to the plane's (min, max)
    power: bool = False       # format v12: the coder holds x^(16/17) of the plane (``to_power``)
    latitude: LatitudeWeighting | None = None   # format v13: the coder holds the latitude-weighted plane
    orography: OrographicPrediction | None = None   # format v14: the coder holds the plane minus its prediction
    # the interpolation coder's values as its encoder reconstructed them (not stored)
    encoder_values: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    tails: float = dataclasses.field(default=0.0, compare=False)   # share of points off by > TAIL_FACTOR x the target

    def stored_bytes(self, dtype) -> int:
        """What the record adds to the chunk beyond the coder's bytes counts too."""
        return (len(self.blob) + (2 * np.dtype(dtype).itemsize if self.clip else 0)
                + (latitude_weighting.SIZE if self.latitude else 0)
                + (orographic_prediction.SIZE if self.orography else 0))


@dataclasses.dataclass
class _Source:
    values: np.ndarray        # what the coder is given
    power: bool = False
    latitude: LatitudeWeighting | None = None
    orography: OrographicPrediction | None = None
    bound_scale: float = 1.0  # first bound guess relative to the plain plane's


def best_candidate(plane: np.ndarray, finite: np.ndarray, mae: Callable[[np.ndarray], float],
                   max_abs_error: float | None, target_mae: float | None, coders=DEFAULT_CODERS,
                   clip_to_range: bool = True, try_power: bool = True, grid=None,
                   threads: int | None = None) -> Candidate | None:
    """The smallest conventional record that keeps the promise, or None.

    ``plane``: the values with NaN filled (finite everywhere), in the chunk dtype; ``finite``:
    where the original is not NaN; ``mae(decoded)``: the latitude-weighted MAE of a decoded
    plane. Every accepted candidate was decoded and checked: max error within
    ``max_abs_error`` and MAE within ``target_mae`` (each when given).

    With a ``target_mae`` (and ``clip_to_range``) the decoded values may be clipped to the plane's own
    range (``clip_range``), which moves no value away from the original: the record keeps that
    range where the target holds only with it. With a ``target_mae`` and no ``max_abs_error``:
    planes with a floor at zero (``power_applies``, and ``try_power``) are also searched under the
    16/17 power (``to_power``); planes of a global ``grid`` (a ``LatLonGrid``) are also searched
    latitude-weighted (``latitude_weighting``), starting from the plain search's bound, but only
    where the plain record's tails are within TAIL_SHARE: weighting moves error to the poles,
    where a lat/lon grid has most of its points. A latitude-weighted or powered candidate counts
    as meeting the target only while its error tails stay within TAIL_SHARE. On a global ``grid``
    the plane minus its orographic prediction is searched first (``orographic_prediction``),
    instead of the plane where the terrain explains much of it, beside it where it explains
    little. The smallest record wins. On planes of PAIRED_FROM_POINTS or more the searches probe
    two bounds a round, side by side where ``threads`` (torch's count where the chunk's caller
    set it; by default this thread's) allows (``concurrent_probes``); the record is the same.
    """
    from . import coder_framing   # (it imports the coder ids from here)

    best = None
    original = plane.astype(np.float64)
    paired = plane.size >= PAIRED_FROM_POINTS
    if threads is None:
        import torch   # (here: importing the package loads no torch)

        threads = torch.get_num_threads()
    low_high = clip_range(plane, finite) if clip_to_range and target_mae is not None else None

    avif_streams = {}   # (coder, id(source), unit, quality) -> AV1 stream

    def coded_avif(coder, source: _Source, knob: float) -> bytes:
        """AV1's stream at ``knob``, coded once per setting: every knob finer than the 12-bit codes and
        MAX_QUALITY allow codes the same stream (``avif_coder.setting``), and a search for a target
        beyond them probes it again and again (1 degree tp at half the paper's target: 36 of 40 encodes)."""
        key = (coder, id(source), *avif_coder.setting(source.values, knob)[1:])
        if key not in avif_streams:
            avif_streams[key] = encode(coder, source.values, knob)
        return avif_streams[key]

    def check(coder, bound, source: _Source) -> tuple[Candidate, float] | None:
        record_coder = RECORD_CODER.get(coder, coder)   # J2K's stream is EBCC's
        try:
            if coder in INTERPOLATION:   # its encoder knows the decoded values (checked once more below)
                blob, values, clamped = interpolation_coder.encode_with_values(source.values, bound, coder == INTERP_CLAMPED)
                record_coder = INTERP_CLAMPED if clamped else INTERP   # (plain where no prediction left the range)
                values = values.astype(plane.dtype)
            else:
                blob = coded_avif(coder, source, bound) if coder in AVIF_SETTINGS else encode(coder, source.values, bound)
                values = _decode_values(record_coder, blob, plane.shape, plane.dtype)
            # as the decoder stores it: to_dtype of the float64 values the coder's values give
            # (for the interpolation coder, of its values in the plane's dtype: the same values)
            unweighted = _unweighted(values.astype(np.float64), source.latitude, source.orography)
            decoded = to_dtype(from_power(unweighted) if source.power else unweighted, plane.dtype)
        except Exception:  # e.g. SPERR refuses values near float32's limits: not a candidate then
            return None
        clip, measured = None, mae(decoded)
        if low_high is not None and measured > target_mae:   # the clip costs the record 2 values: only if needed
            clipped = np.clip(decoded, *low_high)
            if not np.array_equal(clipped[finite], decoded[finite], equal_nan=True):
                decoded, clip, measured = clipped, low_high, mae(clipped)
        error = np.abs(decoded - original)[finite]
        if max_abs_error is not None and not (error <= max_abs_error).all():
            return None    # (a NaN error fails the comparison too)
        if not np.isfinite(measured):   # NaN where the original is finite
            return None
        tails = float(np.mean(error > TAIL_FACTOR * target_mae)) if target_mae is not None else 0.0
        if source.power:   # the tails count as the MAE does: over TAIL_SHARE reads as over the target
            measured = max(measured, target_mae * tails / TAIL_SHARE)
        if record_coder == AVIF and target_mae is not None:   # nor may AV1 add tails to the records it competes with
            measured = max(measured, target_mae * tails / max(TAIL_SHARE, best.tails if best else 0.0))
        short = coder_framing.shorten(record_coder, blob, plane.shape, plane.dtype)
        if short is None and record_coder == EBCC:
            return None    # the decoder takes EBCC only with the header it rebuilds (coder_framing.check_ebcc)
        return Candidate(record_coder, bound, blob if short is None else short, short is not None, clip, source.power,
                         source.latitude, source.orography, values if coder in INTERPOLATION else None, tails), measured

    def search(coder, source: _Source, start: float | None, steps: int | None = None) -> Candidate | None:
        """The smallest record of ``coder`` on ``source`` that meets the target (or the bound),
        probing up to two bounds a round (``concurrent_probes``), ``steps`` probes at most (by
        default SEARCH_STEPS_OF the coder)."""
        found = None
        if target_mae is None:
            result = check(coder, max_abs_error, source)
            return result[0] if result else None
        ceiling = np.inf if max_abs_error is None else max_abs_error
        # on large planes the first round probes twice where no record is in hand yet or the start
        # is informed; a coder tried after a record exists first probes once (most lose at once: HOPELESS)
        first_paired = paired and (best is None or start is not None or coder == J2K)
        if start is None and coder == J2K:   # a ratio: from the best record so far, else 20
            start = J2K_FIRST_RATIO * plane.nbytes / (best.stored_bytes(plane.dtype) if best else plane.nbytes / 20)
        informed = start is not None
        bound = min(ceiling, BOUND_PER_MAE[coder] * target_mae * source.bound_scale if start is None else start)
        bounds = [bound]
        if first_paired and bound < ceiling:
            bounds.append(min(ceiling, bound * (SECOND_PROBE_INFORMED if informed else SECOND_PROBE)))
        tried, left = [], steps or SEARCH_STEPS_OF.get(coder, SEARCH_STEPS)
        left += left % 2 if paired else 0   # whole rounds
        missed_sizes = {}   # bound -> stored bytes, of the probes that missed the target
        while bounds:
            results = concurrent_probes.run_all(lambda b: check(coder, b, source), bounds, threads)
            left -= len(bounds)
            stop = False
            missed_sizes.update((b, r[0].stored_bytes(plane.dtype)) for b, r in zip(bounds, results)
                                if r is not None and r[1] > target_mae)
            # the best record so far in this coder's probe bytes (a speed-8 AV1 probe writes more)
            best_bytes = None if best is None else PROBE_BYTES.get(coder, 1.0) * best.stored_bytes(plane.dtype)
            for bound, result in zip(bounds, results):   # (ascending bounds)
                if (result is not None and best_bytes is not None
                        and result[0].stored_bytes(plane.dtype) > HOPELESS * best_bytes
                        and result[1] >= NEAR_TARGET * target_mae
                        and not _bracket_may_win(missed_sizes, bound, best_bytes)):
                    stop = True   # near the target sizes fall only slowly with the bound: this coder will not win
                    continue
                measured = 2 * target_mae if result is None else result[1]   # a broken bound: step down
                if result is not None and measured <= target_mae and (source.latitude is None or result[0].tails <= TAIL_SHARE):
                    if found is None or len(result[0].blob) < len(found.blob):   # SZ3's size is not monotone
                        found = result[0]
                    if measured >= CLOSE_ENOUGH * target_mae or bound >= ceiling:
                        stop = True
                tried.append((bound, measured))
            if stop or left <= 0:
                break
            bounds = _next_round(tried, target_mae, ceiling, FIRST_SLOPE.get(coder, 1.0), paired)[:left]
        if coder in AVIF_RECORD_OF_PROBE and found is not None and (
                best is None or found.stored_bytes(plane.dtype) < PROBE_BYTES[coder] * best.stored_bytes(plane.dtype)):
            # the record: a short search at SPEED from the unit found, where the probe's size says it may win
            final = search(AVIF_RECORD_OF_PROBE[coder], source, found.bound, AVIF_FINAL_STEPS)
            found = final if final is not None and len(final.blob) < len(found.blob) else found
        return found

    if min(plane.shape) < EBCC_MIN_SIDE or plane.dtype != np.float32:   # EBCC codes float32 only
        coders = tuple(c for c in coders if c not in (EBCC, J2K))
    if min(plane.shape) < avif_coder.MIN_SIDE or plane.ndim != 2:
        coders = tuple(c for c in coders if c not in AVIF_SETTINGS)
    if "ssim" not in avif_coder.tunes():   # (libaom's options cannot be passed here: psnr alone)
        coders = tuple(c for c in coders if c not in (AVIF, AVIF_PROBE))
    if not paired:   # small planes: probes at SPEED take milliseconds, and its own search finds smaller records
        coders = tuple(AVIF_RECORD_OF_PROBE.get(c, c) for c in coders)
        # ... and the plain interpolation coder is searched beside the clamped one: there the clamped
        # stream's 16-byte head is 1-2% of a record, more than the clip saves on most smooth fields
        coders = tuple(k for c in coders for k in ((INTERP, INTERP_CLAMPED) if c == INTERP_CLAMPED else (c,)))
    sources = [_Source(plane)]
    if grid is not None and target_mae is not None and max_abs_error is None and PREDICT_OROGRAPHY:
        fitted = orographic_prediction.fit(plane, finite, grid)
        if fitted is not None:   # the coders get the plane minus what the terrain predicts (first)
            predicted = _Source(fitted.values, orography=fitted.prediction)
            sources = [predicted] if fitted.explained >= orographic_prediction.SURE_EXPLAINED else [predicted, sources[0]]
    if try_power and target_mae is not None and max_abs_error is None and power_applies(plane, finite):
        positive = original[finite & (original > 0)]
        # first guess of the bound under the power: the mean derivative of x^(16/17) over the wet points
        sources.append(_Source(to_power(plane), power=True,
                               bound_scale=float(np.mean(POWER * np.power(positive, POWER - 1.0)))))
    weigh = grid is not None and target_mae is not None and max_abs_error is None
    weighted_sources = {}   # per source: fitted once, at its first record with light tails

    def run(coder, source: _Source) -> None:
        """Search ``coder`` on ``source``, then on the latitude-weighted plane if that may pay."""
        nonlocal best, weigh
        found = search(coder, source, None)
        if found is not None and (best is None or found.stored_bytes(plane.dtype) < best.stored_bytes(plane.dtype)):
            best = found
        if not weigh or source.power or found is None or found.tails > TAIL_SHARE:
            return
        if id(source) not in weighted_sources:
            weighting = latitude_weighting.fit(source.values, grid)
            if weighting is None:
                weigh = False
                return
            weighted_sources[id(source)] = _Source(
                latitude_weighting.forward(source.values, weighting), latitude=weighting, orography=source.orography,
                bound_scale=1.0 / latitude_weighting.error_gain(weighting, plane.shape[0]))
        weighted_source = weighted_sources[id(source)]
        # the first guess: the plain record's bound, less the error the weighting adds
        weighted = search(coder, weighted_source, found.bound * weighted_source.bound_scale)
        if weighted is not None and weighted.stored_bytes(plane.dtype) < best.stored_bytes(plane.dtype):
            best = weighted

    for coder in coders:
        for source in sources:
            run(coder, source)
    if best is not None and best.coder in INTERPOLATION and not np.array_equal(
            _decode_values(best.coder, best.blob, plane.shape, plane.dtype), best.encoder_values):
        # never seen; if the decoder ever disagreed with the encoder, the other coders still keep the promise
        return best_candidate(plane, finite, mae, max_abs_error, target_mae,
                              tuple(c for c in coders if c not in INTERPOLATION), clip_to_range, try_power, grid, threads)
    return best

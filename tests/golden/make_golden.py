"""Write golden chunks for the shipped weights: ``python -m tests.golden.make_golden``.

Each fixture is a chunk encoded by this release, its codec config and the array it
decodes to. tests/test_golden.py checks that every later release still decodes them (the
numcodecs ``check_backwards_compatibility`` habit). Inputs are synthetic band-limited
fields, so no shared data is copied into the repository. Never regenerate existing
fixtures: add new ones next to them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ducc0
import numpy as np

from xneuralcodec import NeuralCodec, __version__

HERE = Path(__file__).resolve().parent


def synthetic_plane(nlat: int, nlon: int, seed: int, lmax: int = 30) -> np.ndarray:
    """A smooth, temperature-like field (K): red spectrum plus a pole-to-equator gradient."""
    rng = np.random.default_rng(seed)
    size = (lmax + 1) * (lmax + 2) // 2
    ell = np.concatenate([np.arange(m, lmax + 1) for m in range(lmax + 1)])
    alm = (rng.normal(size=size) + 1j * rng.normal(size=size)) / (1.0 + ell) ** 1.5
    alm[: lmax + 1] = alm[: lmax + 1].real
    field = ducc0.sht.synthesis_2d(alm=alm[None], ntheta=nlat, nphi=nlon, lmax=lmax, spin=0, geometry="CC")[0]
    lat = np.linspace(90, -90, nlat)[:, None]
    return (260.0 + 30.0 * np.cos(np.deg2rad(lat)) + 8.0 * field / field.std()).astype(np.float32)


def terrain_1deg() -> np.ndarray:
    """The package's terrain on the 1 degree grid (north first, from 0 east) that the orographic cases share."""
    from xneuralcodec.sphere import elevation

    return elevation.on_grid(181, 360, 90.0, 0.0)


def cases():
    released = tuple(int(p) for p in __version__.split(".")[:2])   # this release's cases and every earlier one's
    grid = {"nlat": 73, "nlon": 144, "lat_first": 90.0, "lon_first": 0.0}
    base = synthetic_plane(73, 144, 0)
    chunk = np.stack([base, np.full_like(base, np.nan), np.full_like(base, 271.5), synthetic_plane(73, 144, 1)])
    chunk[3, 20:30, 40:60] = np.nan
    yield "2.5deg_q3_mixed_planes", NeuralCodec(quality=3, grid=grid), chunk.reshape(2, 2, 73, 144)
    yield "2.5deg_q0", NeuralCodec(quality=0, grid=grid), base[None]
    yield "2.5deg_q5_float64", NeuralCodec(quality=5, grid=grid), base.astype(np.float64)
    yield "1deg_q2", NeuralCodec(quality=2), synthetic_plane(181, 360, 2, lmax=90)
    if released >= (0, 2):  # error-bound correction, format v2
        stepped = synthetic_plane(73, 144, 3)
        stepped[:, 70:] += 5.0  # a grid-scale jump the network smooths: the correction must fix it
        yield "2.5deg_q1_max_abs_error", NeuralCodec(quality=1, grid=grid, max_abs_error=0.25), stepped
    if released >= (0, 3):  # per-plane rate, format v3
        planes = np.stack([synthetic_plane(73, 144, 4), 0.2 * synthetic_plane(73, 144, 5), np.full_like(base, 250.0)])
        planes[0, 5:9, 100:120] = np.nan
        yield "2.5deg_target_mae", NeuralCodec(grid=grid, target_mae=0.9), planes
        yield "2.5deg_q2.5_fractional", NeuralCodec(quality=2.5, grid=grid), synthetic_plane(73, 144, 6)
        yield "2.5deg_target_mae_unreachable", NeuralCodec(grid=grid, target_mae=0.05, max_abs_error=0.5), stepped
    if released >= (0, 4):  # corrections as west differences, format v4
        yield "2.5deg_q0_max_abs_error_west", NeuralCodec(quality=0, grid=grid, max_abs_error=0.05), synthetic_plane(73, 144, 7)
        grid1 = {"nlat": 181, "nlon": 360, "lat_first": 90.0, "lon_first": 0.0}
        yield "1deg_target_mae_auto_nside", NeuralCodec(grid=grid1, target_mae=1.5, nside="auto"), synthetic_plane(181, 360, 8, lmax=90)
    if released >= (0, 5):  # the condition in the header, format v5
        yield "2.5deg_q2_condition_t850", NeuralCodec(quality=2, grid=grid, variable="t", level=850), synthetic_plane(73, 144, 9)
        yield "2.5deg_q4_condition_msl_target_mae", NeuralCodec(grid=grid, variable="msl", target_mae=0.5), synthetic_plane(73, 144, 10)
    if released >= (0, 6):  # scaled and lossless planes, format v6
        tiny = np.stack([synthetic_plane(73, 144, 11).astype(np.float64) * 1e-50, np.full((73, 144), 3e300)])
        yield "2.5deg_q3_scaled_float64", NeuralCodec(grid=grid), tiny
        yield "2.5deg_lossless_max_abs_error", NeuralCodec(grid=grid, max_abs_error=1e-12), synthetic_plane(73, 144, 12).astype(np.float64)
    if released >= (0, 7):  # projection iterations, conventional planes: v7
        yield "2.5deg_q3_v7_projection", NeuralCodec(quality=3, grid=grid), synthetic_plane(73, 144, 13)
        holes = np.stack([synthetic_plane(73, 144, 14), synthetic_plane(73, 144, 15)])
        holes[1, 30:40, 10:50] = np.nan
        yield "2.5deg_conventional_max_abs_error", NeuralCodec(grid=grid, max_abs_error=0.05), holes
        yield "2.5deg_conventional_target_mae", NeuralCodec(grid=grid, target_mae=0.1), synthetic_plane(73, 144, 16)
        yield "1deg_target_mae_float64", NeuralCodec(target_mae=0.3), synthetic_plane(181, 360, 17, lmax=90).astype(np.float64)
        # the network and its correction layer in a v7 chunk (the cases above now pick SPERR / SZ3)
        yield "2.5deg_q1_max_abs_error_network", NeuralCodec(quality=1, grid=grid, max_abs_error=0.25, conventional=False), stepped
        yield "2.5deg_target_mae_unreachable_network", NeuralCodec(grid=grid, target_mae=0.05, max_abs_error=0.5,
                                                                   conventional=False), stepped
    if released >= (0, 8):  # hyperprior-v5: checkerboard latents
        v5 = {"model": "hyperprior-v5"}
        yield "1deg_v5_q3", NeuralCodec(quality=3, variable="t2m", **v5), synthetic_plane(181, 360, 18, lmax=90)
        yield "2.5deg_v5_q7_two_planes", NeuralCodec(quality=7, grid=grid, **v5), np.stack(
            [synthetic_plane(73, 144, 19), synthetic_plane(73, 144, 20)])
        yield "1deg_v5_target_mae_network", NeuralCodec(target_mae=0.5, conventional=False, **v5), \
            synthetic_plane(181, 360, 21, lmax=90)
        # effort="max": EBCC (coder 3, new in format v8) is this plane's smallest record
        yield "1deg_effort_max_ebcc_target_mae", NeuralCodec(target_mae=0.1, effort="max"), \
            synthetic_plane(181, 360, 22, lmax=90)
    if released >= (0, 9):  # hyperprior-v5.1: calibrated means
        v51 = {"model": "hyperprior-v5.1"}
        yield "1deg_v5.1_q2", NeuralCodec(quality=2, variable="t2m", **v51), synthetic_plane(181, 360, 23, lmax=90)
        yield "1deg_v5.1_target_mae_network", NeuralCodec(target_mae=0.5, conventional=False, **v51), \
            synthetic_plane(181, 360, 24, lmax=90)
    if released >= (0, 11):  # Jacobi back projection (nside >= 128), v9
        yield "1deg_nside128_q3_jacobi_projection", NeuralCodec(quality=3, nside=128, variable="t2m"), \
            synthetic_plane(181, 360, 25, lmax=90)
        yield "1deg_v5.1_nside128_target_mae", NeuralCodec(target_mae=0.4, nside=128, model="hyperprior-v5.1",
                                                           conventional=False, variable="t2m"), \
            synthetic_plane(181, 360, 26, lmax=90)
    if released >= (0, 12):  # model="auto"; hyperprior-v5.2 (lighter g_s)
        yield "1deg_auto_q2", NeuralCodec(quality=2, variable="t2m"), synthetic_plane(181, 360, 27, lmax=90)
        yield "1deg_v5.2_q5", NeuralCodec(model="hyperprior-v5.2", quality=5, variable="t2m"), \
            synthetic_plane(181, 360, 28, lmax=90)
    if released >= (0, 13):  # hyperprior-v5.3 (lighter entropy model)
        yield "1deg_v5.3_q5", NeuralCodec(model="hyperprior-v5.3", quality=5, variable="t2m"), \
            synthetic_plane(181, 360, 29, lmax=90)
        yield "1deg_v5.3_q0_two_planes", NeuralCodec(model="hyperprior-v5.3", quality=0, variable="msl"), \
            np.stack([synthetic_plane(181, 360, 30, lmax=90), synthetic_plane(181, 360, 31, lmax=90)])
        # format v10: a Jacobi back projection in single precision (nside >= 128, no max_abs_error)
        yield "1deg_nside128_v5.3_q4_single_projection", NeuralCodec(model="hyperprior-v5.3", quality=4, nside=128,
                                                                      variable="t2m"), \
            synthetic_plane(181, 360, 32, lmax=90)
    if released >= (0, 14):  # format v11: short frames, no bound stored
        wet = synthetic_plane(73, 144, 34).astype(np.float64)
        wet[50:60, 20:90] = np.nan
        yield "2.5deg_v11_float64_sperr_q_holes", NeuralCodec(grid=grid, target_mae=0.05), wet
        # a field at its floor over 60% of the globe (like precipitation): the record clips to its range
        base = synthetic_plane(73, 144, 35, lmax=60)
        rain = (np.maximum(base - np.percentile(base, 60), 0) * 1e-3).astype(np.float32)
        yield "2.5deg_v11_range_clip", NeuralCodec(grid=grid, target_mae=5e-5), rain
    if released >= (0, 15):  # format v12: the 16/17 power
        # the same field at its floor over 60% of the globe: from 0.15.0 coded under the power (its
        # tails stay within conventional.TAIL_SHARE); 0.14.0 clipped it (2.5deg_v11_range_clip)
        yield "2.5deg_v12_power", NeuralCodec(grid=grid, target_mae=5e-5), rain
        # the interpolation coder (coder 5) for a hard bound, with NaN holes
        holes = synthetic_plane(73, 144, 37).astype(np.float32)
        holes[10:14, 30:90] = np.nan
        yield "2.5deg_v12_interp_max_abs_error_holes", NeuralCodec(grid=grid, max_abs_error=0.2), holes
    if released >= (0, 16):  # format v13: latitude weighting
        # a target_mae plane coded latitude-weighted (bit 4 of the coder byte, parameters after the
        # clip range), beside one with NaN holes
        weighted = np.stack([synthetic_plane(73, 144, 38, lmax=60), synthetic_plane(73, 144, 39, lmax=60)])
        weighted[1, 30:36, 50:80] = np.nan
        yield "2.5deg_v13_latitude_weighted", NeuralCodec(grid=grid, target_mae=0.1), weighted
        # EBCC's JPEG 2000 layer alone (a default coder for target_mae since 0.16.0; the record names
        # EBCC), here latitude-weighted: a rough field (white noise on the smooth one)
        rough = (synthetic_plane(73, 144, 40, lmax=60)
                 + 0.5 * np.random.default_rng(41).standard_normal((73, 144))).astype(np.float32)
        yield "2.5deg_v13_jpeg2000_layer_weighted", NeuralCodec(grid=grid, target_mae=0.3), rough
    if released >= (0, 17):  # format v14: orographic prediction
        # a temperature-like 1 degree field that cools 6.5 K per km up the shipped terrain (the
        # package's own data, no shared data): its record holds the prediction (bit 3 of the coder
        # byte, 11 parameter bytes after the latitude weighting's)
        terrain = terrain_1deg()
        mountains = (synthetic_plane(181, 360, 42, lmax=90) - 0.0065 * terrain).astype(np.float32)
        yield "1deg_v14_orographic_prediction", NeuralCodec(target_mae=0.4, variable="t2m"), mountains
        grid_s = {"nlat": 180, "nlon": 360, "lat_first": -89.5, "lon_first": -179.5}   # south first, no pole rows
        from xneuralcodec.sphere import elevation

        terrain_s = elevation.on_grid(180, 360, -89.5, -179.5)
        yield "1deg_v14_orographic_prediction_south_first", NeuralCodec(grid=grid_s, target_mae=0.4), \
            (synthetic_plane(180, 360, 43, lmax=90) - 0.0065 * terrain_s).astype(np.float64)
    if released >= (0, 19):  # format v15: the network's orographic prediction
        # network records holding the plane minus its prediction (bit 3 of the kind byte, 11
        # parameter bytes after the fixed fields): at a quality, beside a plane the terrain does not
        # explain; and under max_abs_error, with a NaN hole, whose correction is against the plane itself
        terrain = terrain_1deg()
        cold = (synthetic_plane(181, 360, 44, lmax=90) - 0.0065 * terrain).astype(np.float32)
        yield "1deg_v15_network_orographic_q2", NeuralCodec(quality=2, variable="t2m"), \
            np.stack([cold, synthetic_plane(181, 360, 45, lmax=90)])
        holed = (synthetic_plane(181, 360, 46, lmax=90) - 0.0065 * terrain).astype(np.float32)
        holed[100:110, 200:240] = np.nan
        yield "1deg_v15_network_orographic_max_abs_error", NeuralCodec(quality=3, max_abs_error=0.5, conventional=False), holed
    if released >= (0, 20):  # hyperprior-v5.4: "auto"'s 0.25 degree model
        # trained on what the v15 network sees; at a 1 degree grid for size, named as the model:
        # a plane the terrain explains (its record holds the prediction) beside one it does not
        terrain = terrain_1deg()
        yield "1deg_v5.4_q5", NeuralCodec(model="hyperprior-v5.4", quality=5, variable="msl"), \
            synthetic_plane(181, 360, 47, lmax=90)
        yield "1deg_v5.4_orographic_q1_two_planes", NeuralCodec(model="hyperprior-v5.4", quality=1, variable="t2m"), \
            np.stack([(synthetic_plane(181, 360, 48, lmax=90) - 0.0065 * terrain).astype(np.float32),
                      synthetic_plane(181, 360, 49, lmax=90)])
    if released >= (0, 21):  # format v16: AV1 intra records (conventional coder 6)
        # temperature-like 1 degree planes over the shipped terrain at MAE targets where AV1 writes the
        # smallest record: float32 at 0.3 K, and float64 at 0.1 K (a finer knob: a raised quality)
        terrain = terrain_1deg()
        yield "1deg_v16_avif", NeuralCodec(target_mae=0.3, variable="t2m"), \
            (synthetic_plane(181, 360, 50, lmax=90) - 0.0065 * terrain).astype(np.float32)
        yield "1deg_v16_avif_float64", NeuralCodec(target_mae=0.1, variable="t2m"), \
            (synthetic_plane(181, 360, 51, lmax=90) - 0.0065 * terrain).astype(np.float64)
    if released >= (0, 23):  # format v17: the interpolation coder with clamped predictions (coder 7)
        # a field at its floor over 60% of the globe, under a hard bound and at an MAE target (float64)
        base = synthetic_plane(73, 144, 52, lmax=60)
        dry = np.maximum(base - np.percentile(base, 60), 0) * 1e-3
        yield "2.5deg_v17_interp_clamped_max_abs_error", NeuralCodec(grid=grid, max_abs_error=2e-5), \
            dry.astype(np.float32)
        yield "2.5deg_v17_interp_clamped_target_mae_float64", NeuralCodec(grid=grid, target_mae=2e-5), dry


def same_content(old: bytes, new: bytes) -> bool:
    """The same chunk but for the format version field (bytes 4-5) and so the checksum: a new
    version that reads the old one's fields alike adds nothing as a fixture."""
    return old[:4] == new[:4] and old[6:-4] == new[6:-4]


def main(argv=None) -> int:
    out = HERE / f"v{__version__}"
    out.mkdir(parents=True, exist_ok=True)
    for name, codec, array in cases():
        if (out / f"{name}.bin").exists():
            print(f"keeping existing {name}", file=sys.stderr)
            continue
        data = codec.encode(array)
        if any(same_content(old.read_bytes(), data) for old in HERE.glob(f"v*/{name}.bin")):
            print(f"{name}: the same bytes as an older release's fixture (but for the version), not repeated",
                  file=sys.stderr)
            continue
        (out / f"{name}.bin").write_bytes(data)
        (out / f"{name}.json").write_text(json.dumps(codec.get_config(), indent=2) + "\n")
        np.save(out / f"{name}.expected.npy", codec.decode(data))
        print(f"wrote {name}: {array.nbytes} -> {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

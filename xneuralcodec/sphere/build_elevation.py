"""Build ``weights/static/elevation-0.25deg-v1.npz``, the surface elevation the orographic
prediction (``coding/orographic_prediction.py``) subtracts, from two files that ship inside
packages on PyPI (no download at run time; the result is committed):

- ``pvlib/data/Altitude.h5`` (pvlib 0.16.1, BSD-3): 1/12 degree altitude in 28 m steps, 255
  = no data, aggregated by Mapzen from ETOPO1 (NOAA), GMTED2010 and SRTM (USGS) and national
  DEMs (attributions in ``pvlib.location.lookup_altitude``);
- ``global_land_mask/globe_combined_mask_compressed.npz`` (global-land-mask 1.0.0, MIT):
  NOAA GLOBE's 1 km water mask.

Water (GLOBE's mask) becomes 0 m, the surface the air sees; where Altitude.h5 has no data, land (Greenland's interior, 2.9% of the
cells) is filled smoothly from the known land around it, so that the fill adds no small scales.
Each 0.25 degree point (721 x 1440, rows 90 -> -90, columns 0 -> 359.75 east) is the area mean
of the 1/12 degree cells within 0.125 degrees of it, rounded to whole metres.

    pip download --no-deps pvlib==0.16.1 global-land-mask==1.0.0 -d wheels && unzip ... && pip install h5py
    python -m xneuralcodec.sphere.build_elevation --altitude pvlib/data/Altitude.h5 \
        --water-mask global_land_mask/globe_combined_mask_compressed.npz --out weights/static/elevation-0.25deg-v1.npz
"""

from __future__ import annotations

import argparse

import numpy as np

CELLS = 12   # 1/12 degree cells per degree in Altitude.h5


def _read_altitude(path: str) -> np.ndarray:
    import h5py   # build time only

    with h5py.File(path, "r") as f:
        return f["Altitude"][:]


def _water_fraction(path: str, shape: tuple[int, int]) -> np.ndarray:
    """GLOBE's 1 km (1/120 degree) water mask as the water share of each 1/12 degree cell."""
    mask = np.load(path)["mask"]
    fy, fx = mask.shape[0] // shape[0], mask.shape[1] // shape[1]
    return mask.reshape(shape[0], fy, shape[1], fx).mean(axis=(1, 3))


def _fill_smoothly(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Unknown cells from a normalised Gaussian average of the known ones, widening until all are set."""
    from scipy.ndimage import gaussian_filter

    out = np.where(known, values, 0.0)
    todo = ~known
    sigma = 2.0
    while todo.any():
        num = gaussian_filter(np.where(known, values, 0.0), sigma, mode=("nearest", "wrap"))
        den = gaussian_filter(known.astype(np.float64), sigma, mode=("nearest", "wrap"))
        ok = todo & (den > 1e-3)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
        sigma *= 2
    return out


def quarter_degree(cells: np.ndarray) -> np.ndarray:
    """1/12 degree cells (rows from 90 N, columns from 180 W) -> 0.25 degree points (rows 90 -> -90,
    columns 0 -> 359.75 E): each point's footprint of +-0.125 degrees covers 2 whole cells and 2 halves
    per axis (weights 1/2, 1, 1, 1/2, over 3)."""
    ny, nx = cells.shape
    g = np.roll(cells, -nx // 2, axis=1)                                  # column 0 starts at 0 E
    weights = np.array([0.5, 1.0, 1.0, 0.5]) / 3.0
    rows = np.clip(3 * np.arange(721)[:, None] + np.arange(-2, 2)[None, :], 0, ny - 1)   # cells 3k-2 .. 3k+1
    cols = (3 * np.arange(1440)[:, None] + np.arange(-2, 2)[None, :]) % nx
    by_row = np.einsum("rk,rkx->rx", np.broadcast_to(weights, rows.shape), g[rows])
    return np.einsum("ck,rck->rc", np.broadcast_to(weights, cols.shape), by_row[:, cols])


def build(altitude_path: str, water_path: str) -> np.ndarray:
    altitude = _read_altitude(altitude_path)
    water = _water_fraction(water_path, altitude.shape)
    metres = altitude.astype(np.float64) * 28.0 - 450.0      # pvlib's encoding
    nodata = altitude == 255
    known = ~nodata | (water >= 0.5)
    metres = np.where(nodata | (water >= 0.5), 0.0, metres)  # water (some cells hold bathymetry): sea level
    metres = _fill_smoothly(metres, known)
    return np.rint(quarter_degree(metres)).astype(np.int16)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--altitude", required=True, help="pvlib's data/Altitude.h5")
    parser.add_argument("--water-mask", required=True, help="global_land_mask's globe_combined_mask_compressed.npz")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    elevation = build(args.altitude, args.water_mask)
    np.savez_compressed(args.out, elevation=elevation)
    print(f"{args.out}: {elevation.shape} int16 m, {elevation.min()}..{elevation.max()}")


if __name__ == "__main__":
    main()

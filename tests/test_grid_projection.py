"""Grid description and the lat/lon <-> HEALPix <-> faces projection."""

import ducc0
import healpy as hp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xneuralcodec.sphere.faces import face_index, faces_to_ring, padding_index, ring_to_faces
from xneuralcodec.sphere.grid import LatLonGrid
from xneuralcodec.format.bitstream import LEGACY_PROJECTION_ITERATIONS
from xneuralcodec.sphere.projection import (DOUBLE, FINE_ITERATIONS, FINE_JACOBI_STEPS, FINE_NSIDE, ITERATIONS, JACOBI,
                                            LSMR, SINGLE, Projector, back_projection_for, precision_for)

from .conftest import load_plane


def band_limited_plane(grid: LatLonGrid, lmax: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    alm = rng.normal(size=hp.Alm.getsize(lmax)) + 1j * rng.normal(size=hp.Alm.getsize(lmax))
    alm[: lmax + 1] = alm[: lmax + 1].real  # m = 0 coefficients are real
    north_first = ducc0.sht.synthesis_2d(
        alm=alm[None], ntheta=grid.nlat, nphi=grid.nlon, lmax=lmax, spin=0, geometry=grid.geometry,
        phi0=np.deg2rad(grid.lon_first % 360),
    )[0]
    return north_first if grid.north_first else north_first[::-1]


GRIDS = [
    LatLonGrid(181, 360, 90.0, 0.0),        # ERA5 1 deg, north first, from 0 E
    LatLonGrid(181, 360, -90.0, 0.0),       # south first
    LatLonGrid(73, 144, 90.0, -180.0),      # 2.5 deg from -180
    LatLonGrid(180, 360, 89.5, 0.0),        # no pole rows (cell centres)
    LatLonGrid(61, 120, 90.0, 0.0),         # 3 deg
]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g.nlat}x{g.nlon}@{g.lat_first},{g.lon_first}")
def test_band_limited_round_trip_is_exact(grid):
    nside = grid.default_nside()
    lmax = min(grid.lmax, 2 * nside) - 2
    plane = band_limited_plane(grid, lmax)
    projector = Projector(grid, nside, iterations=LEGACY_PROJECTION_ITERATIONS)
    back = projector.to_latlon(faces_to_ring(ring_to_faces(projector.to_healpix(plane))))
    assert np.abs(back - plane).max() < 1e-5 * plane.std()


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g.nlat}x{g.nlon}@{g.lat_first},{g.lon_first}")
def test_few_iterations_stay_close_to_the_converged_projection(grid):
    """Format v7 decodes with ``projection.ITERATIONS`` LSMR steps instead of 30: on a
    band-limited field the two back projections stay within a small fraction of its spread."""
    nside = grid.default_nside()
    plane = band_limited_plane(grid, min(grid.lmax, 2 * nside) - 2)
    ring = Projector(grid, nside).to_healpix(plane)
    fast = Projector(grid, nside).to_latlon(ring)
    converged = Projector(grid, nside, iterations=LEGACY_PROJECTION_ITERATIONS).to_latlon(ring)
    assert ITERATIONS < LEGACY_PROJECTION_ITERATIONS
    assert np.abs(fast - converged).max() < 1e-3 * plane.std()
    assert np.abs(fast - converged).mean() < 3e-5 * plane.std()


@pytest.mark.parametrize("nside", [FINE_NSIDE, 256])
def test_lsmr_with_fewer_iterations_stays_close_on_a_real_field(nside):
    """0.10.0 wrote FINE_ITERATIONS LSMR iterations for spheres of nside >= FINE_NSIDE (those
    chunks still decode so): on ERA5 0.25 degree t2m (not band-limited) the back projection
    stays close to the converged one."""
    plane, grid = load_plane("era5_0.25deg")
    plane = plane.astype(np.float64)
    ring = Projector(grid, nside).to_healpix(plane)
    fast = Projector(grid, nside, FINE_ITERATIONS, LSMR).to_latlon(ring)
    converged = Projector(grid, nside, iterations=LEGACY_PROJECTION_ITERATIONS).to_latlon(ring)
    assert np.abs(fast - converged).max() < 5e-3 * plane.std()
    assert np.abs(fast - converged).mean() < 1e-4 * plane.std()


def test_fine_spheres_back_project_with_a_jacobi_step_and_decode_as_well():
    """From 0.11.0 (format v9) spheres of nside >= FINE_NSIDE record one Jacobi step from the
    weighted adjoint: the same ERA5 0.25 degree chunk decodes to the same MAE, to 1e-4, as
    with 0.10.0's two LSMR iterations, and the chunk says which one it took."""
    from xneuralcodec import NeuralCodec
    from xneuralcodec.evaluation.metrics import weighted_errors
    from xneuralcodec.format import bitstream

    assert back_projection_for(FINE_NSIDE) == (JACOBI, FINE_JACOBI_STEPS) == (JACOBI, 1)
    assert back_projection_for(FINE_NSIDE // 2) == (LSMR, ITERATIONS)
    plane, grid = load_plane("era5_0.25deg")
    codec = NeuralCodec(grid=grid.to_config(), variable="t2m")
    data = codec.encode(plane)
    chunk = bitstream.unpack(data)
    assert (chunk.nside, chunk.projection_method, chunk.projection_iterations) == (256, JACOBI, 1)
    chunk.projection_method, chunk.projection_iterations, chunk.projection_precision = LSMR, FINE_ITERATIONS, DOUBLE
    as_before = bitstream.pack(chunk)
    maes = [weighted_errors(plane, codec.decode(d), grid)["mae"] for d in (data, as_before)]
    assert abs(maes[0] / maes[1] - 1) < 1e-4, maes
    assert not np.array_equal(codec.decode(data), codec.decode(as_before))   # the header's method is obeyed


def test_single_precision_back_projection_where_no_bound_is_promised():
    """From 0.13.0 (format v10) a Jacobi back projection runs in single precision unless the
    chunk holds max_abs_error: on ERA5 0.25 degree t2m it decodes within 1e-3 K of double
    precision, to the same MAE to 1e-5; the header's flag is obeyed, and a bounded chunk keeps
    double precision."""
    from xneuralcodec import NeuralCodec
    from xneuralcodec.evaluation.metrics import weighted_errors
    from xneuralcodec.format import bitstream

    assert precision_for(FINE_NSIDE, bounded=False) == SINGLE
    assert precision_for(FINE_NSIDE, bounded=True) == precision_for(FINE_NSIDE // 2, bounded=False) == DOUBLE
    plane, grid = load_plane("era5_0.25deg")
    codec = NeuralCodec(grid=grid.to_config(), variable="t2m")
    data = codec.encode(plane)
    chunk = bitstream.unpack(data)
    assert chunk.version >= 10 and (chunk.projection_method, chunk.projection_precision) == (JACOBI, SINGLE)
    chunk.projection_precision = DOUBLE
    single, double = codec.decode(data), codec.decode(bitstream.pack(chunk))
    assert not np.array_equal(single, double) and np.abs(single - double).max() < 1e-3
    maes = [weighted_errors(plane, d, grid)["mae"] for d in (single, double)]
    assert abs(maes[0] / maes[1] - 1) < 1e-5, maes
    bounded = NeuralCodec(grid=grid.to_config(), variable="t2m", max_abs_error=2.0, conventional=False)
    assert bitstream.unpack(bounded.encode(plane)).projection_precision == DOUBLE
    with pytest.raises(ValueError, match="float32 Jacobi"):
        Projector(grid, 64, ITERATIONS, LSMR, SINGLE)


def test_orientation_is_respected():
    """A field that is warm in the north stays warm in the north, whatever the row order."""
    north = LatLonGrid(91, 180, 90.0, 0.0)
    south = LatLonGrid(91, 180, -90.0, 0.0)
    lat = north.latitudes[:, None] * np.ones((1, 180))
    m_north = Projector(north, 64).to_healpix(lat)
    m_south = Projector(south, 64).to_healpix(lat[::-1])
    np.testing.assert_allclose(m_north, m_south, atol=1e-6)
    theta, _ = hp.pix2ang(64, np.arange(m_north.size))
    assert np.corrcoef(m_north, 90 - np.rad2deg(theta))[0, 1] > 0.999


def test_grid_from_coords_accepts_common_layouts():
    g = LatLonGrid.from_coords(np.linspace(-90, 90, 73), np.arange(-180, 180, 2.5))
    assert (g.nlat, g.nlon, g.lat_first, g.lon_first, g.geometry) == (73, 144, -90.0, -180.0, "CC")
    g = LatLonGrid.from_coords(89.5 - np.arange(180), np.arange(0.5, 360, 1.0))
    assert g.geometry == "F1"


@pytest.mark.parametrize(
    "lat, lon, match",
    [
        (np.linspace(80, -80, 81), np.arange(0, 360, 1.0), "global regular latitude"),     # regional
        (np.array([88.5, 86.7, 84.8, 82.9] + list(np.linspace(81, -88.5, 60))), np.arange(0, 360, 3.0), "regular latitude"),
        (np.linspace(90, -90, 181), np.arange(0, 180, 1.0), "covering 360"),                # half the globe
    ],
)
def test_grid_from_coords_rejects_unsupported(lat, lon, match):
    with pytest.raises(ValueError, match=match):
        LatLonGrid.from_coords(lat, lon)


def test_grid_config_validation():
    with pytest.raises(TypeError, match="expected an int"):
        LatLonGrid(181.0, 360, 90.0)
    with pytest.raises(ValueError, match="global regular latitude"):
        LatLonGrid(181, 360, 45.0)
    with pytest.raises(ValueError, match="expected grid keys"):
        LatLonGrid.from_config({"nlat": 181})
    assert LatLonGrid.from_config(LatLonGrid(181, 360, 90.0).to_config()) == LatLonGrid(181, 360, 90.0)


def test_faces_follow_healpix_xyf_layout():
    nside = 8
    idx = face_index(nside)
    x, y, f = hp.pix2xyf(nside, idx.ravel(), nest=False)
    assert np.array_equal(f.reshape(idx.shape), np.broadcast_to(np.arange(12)[:, None, None], idx.shape))
    assert np.array_equal(x.reshape(idx.shape)[0], np.broadcast_to(np.arange(nside), (nside, nside)))
    m = np.arange(12 * nside * nside, dtype=float)
    assert np.array_equal(faces_to_ring(ring_to_faces(m)), m)


@pytest.mark.parametrize("nside", [2, 8, 32])
def test_padding_takes_true_neighbours(nside):
    """Every padded edge pixel is a HEALPix neighbour of the face pixel it borders."""
    idx = face_index(nside)
    flat = idx.ravel()
    table = padding_index(nside, 1)
    for f in range(12):
        for i in range(nside):
            for (py, px), (cy, cx) in [((i + 1, 0), (i, 0)), ((i + 1, nside + 1), (i, nside - 1)),
                                        ((0, i + 1), (0, i)), ((nside + 1, i + 1), (nside - 1, i))]:
                neighbour = flat[table[f, py, px]]
                assert neighbour in hp.get_all_neighbours(nside, idx[f, cy, cx]), (f, py, px)


@pytest.mark.parametrize("lat, match", [
    (np.r_[90.0, 90.0, np.linspace(87.5, -90, 71)], "latitude coordinate 'latitude' repeats 90"),
    (np.r_[np.linspace(90, -90, 73)[:36], [0.0, 0.0], np.linspace(90, -90, 73)[37:]], "'latitude' repeats 0"),
    (np.linspace(92.5, -87.5, 73), r"latitude coordinate 'latitude' has values beyond \+-90 \(92.5\)"),
    (np.linspace(90, -90, 73) * 1.01, r"'latitude' has values beyond \+-90"),
    (np.array([45.0]), "latitude coordinate 'latitude' has a single row"),
    (np.array([], dtype=float), "latitude coordinate 'latitude' is empty"),
])
def test_degenerate_latitudes_are_refused_naming_the_coordinate(lat, match):
    with pytest.raises(ValueError, match=match):
        LatLonGrid.from_coords(lat, np.arange(144) * 2.5, names=("latitude", "longitude"))


@settings(max_examples=40, deadline=None)
@given(nlat=st.sampled_from([37, 72, 73, 181]), where=st.floats(0, 1), flaw=st.sampled_from(["repeat", "beyond"]),
       name=st.sampled_from(["lat", "latitude", "y"]))
def test_any_repeated_or_out_of_range_latitude_is_refused_by_name(nlat, where, flaw, name):
    lat = LatLonGrid(nlat, 144, 90.0 if nlat % 2 else 90.0 - 90.0 / nlat).latitudes.copy()
    i = min(int(where * nlat), nlat - 1)
    if flaw == "repeat":
        lat[i] = lat[i - 1 if i else 1]
    else:
        lat[i] = 90.5 if i < nlat // 2 else -91.0
    with pytest.raises(ValueError, match=f"latitude coordinate '{name}' (repeats|has values beyond)"):
        LatLonGrid.from_coords(lat, np.arange(144) * 2.5, names=(name, "lon"))


def test_encoding_names_the_degenerate_coordinate():
    import xarray as xr

    import xneuralcodec

    lat = np.r_[90.0, 90.0, np.linspace(87.5, -90, 71)]
    ds = xr.Dataset({"t": (("lat", "lon"), np.zeros((73, 144), np.float32))}, coords={"lat": lat, "lon": np.arange(144) * 2.5})
    with pytest.raises(ValueError, match="variable 't': latitude coordinate 'lat' repeats 90"):
        xneuralcodec.encoding(ds)

"""Which dims of an xarray variable are latitude and longitude.

The codec needs whole lat x lon planes as the trailing dims of every chunk; the encoding
helper, the command line and the data readers all ask the same question, answered here.
"""

from __future__ import annotations

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")


def lat_lon_dims(da) -> tuple[str, str] | None:
    """(lat dim, lon dim) when they are the variable's last two dims, else None."""
    if da.ndim < 2:
        return None
    lat, lon = da.dims[-2], da.dims[-1]
    if lat in LAT_NAMES and lon in LON_NAMES:
        return lat, lon
    return None

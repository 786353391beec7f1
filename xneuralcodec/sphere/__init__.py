"""The sphere: global lat/lon grids, their HEALPix faces and the transforms between them."""

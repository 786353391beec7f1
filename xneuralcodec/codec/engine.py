"""The codec engine: N-d float chunk <-> bitstream bytes. Both Zarr faces only adapt it.

Per chunk, every trailing (nlat, nlon) plane is coded on its own; each step has its module::

    chunk --planes.describe--> records + standardised planes
          --sphere.projection / faces--> 12 faces (nside)
          --network.transform: g_a, gain[q], h_a--> y, z     (coding.rate_control picks q for target_mae)
          --coding.latents (v4) / coding.checkerboard (v5): integer entropy model, range coding--> words
          --coding.correction (max_abs_error / target_mae)--> corrections
          --coding.conventional: SZ3 / SPERR instead, for planes where they are smaller
            (searched in a worker thread beside the network's analysis: beside.py)
          --format.bitstream.pack--> bytes

and decoding replays the integer half exactly, then runs g_s, projects back to the
lat/lon grid and restores mean, std, NaN positions and dtype. Planes go through the
network in batches so that big chunks do not need big memory.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

from ..coding import conventional, correction
from ..coding.checkerboard import CheckerboardLatentCoder
from ..coding.latents import LatentCoder
from ..coding.rate_control import NetworkCannotWin, PlaneMAE, PlaneRateSearch
from ..format import bitstream
from ..format.bitstream import KIND_NEURAL, Chunk
from ..network.conditioning import Condition
from ..network.transform import NeuralTransform
from ..network.weights import LoadedModel
from ..options import AUTO_NSIDE, CodecOptions
from ..sphere.faces import ring_to_faces
from ..sphere.grid import LatLonGrid, area_weights
from ..sphere.projection import Projector, precision_for
from . import planes as plane_records
from .beside import side_by_side


# effort="max" refines the latents, which made them 8-10% smaller on ERA5 0.25 degree t2m
# (hyperprior-v5.1, at 0.4 and 0.8 K): the rate search keeps network rates up to this much
# larger than the rival's record in play, and the smaller record still wins in the end
REFINE_HEADROOM = 1.25
COARSER_TRIES = 2


def check_nside(nside: int | None, grid: LatLonGrid, model: LoadedModel) -> int:
    """nside must be a power of two the network can stride down, at most ``grid.max_nside``."""
    nside = grid.default_nside() if nside is None else nside
    if nside < model.config.min_nside or nside & (nside - 1) or nside > grid.max_nside:
        raise ValueError(
            f"expected nside a power of two in {model.config.min_nside}..{grid.max_nside} for a "
            f"{grid.nlat} x {grid.nlon} grid, got {nside} instead"
        )
    return nside


def planes_per_batch(nside: int) -> int:
    """Planes sent through the network together; fewer at high nside to bound memory."""
    return max(1, (4 * 64 * 64) // (nside * nside))


class Engine:
    def __init__(self, model: LoadedModel):
        self.model = model
        self.transform = NeuralTransform(model)
        self.latents = CheckerboardLatentCoder(model) if model.checkerboard else LatentCoder(model)

    # -- encode ------------------------------------------------------------------------
    def encode(self, arr, options: CodecOptions) -> bytes:
        """Code a chunk with ``options`` (the model is the engine's own).

        The condition (variable kind and level, stored in the header) steers a conditioned
        model's FiLM layers; unconditioned models only record it.

        ``nside="auto"`` (with ``target_mae``) also codes the chunk on every coarser sphere
        than the grid's default, down to the network's smallest (halving nside each time), and
        keeps the shortest. Smooth fields meet a loose target for far fewer bytes on a coarser
        sphere (measured on ERA5 0.25 degree t2m with hyperprior-v4: at 0.4 K 179x at nside 256,
        399x at 128; at 0.8 K 429x at 256, 2525x at 32), at the price of every scale the
        coarser sphere cannot hold, which the MAE barely sees; hence opt-in. Each coarser
        sphere costs a quarter of the one before."""
        search = options.nside == AUTO_NSIDE
        arr, grid = plane_records.check_array(arr, options.grid)
        nside = check_nside(None if search else options.nside, grid, self.model)
        data = self.encode_at(arr, grid, nside, options)
        while search and options.target_mae is not None and nside // 2 >= self.model.config.min_nside:
            nside //= 2
            coarser = self.encode_at(arr, grid, nside, options)
            if len(coarser) < len(data):
                data = coarser
        return data

    def encode_at(self, arr: np.ndarray, grid: LatLonGrid, nside: int, options: CodecOptions) -> bytes:
        """The chunk's bytes on one HEALPix sphere."""
        condition = options.condition
        target_mae, max_abs_error = options.target_mae, options.max_abs_error
        quality = float(np.float32(options.quality))  # as stored in the plane records
        planes = arr.reshape(-1, grid.nlat, grid.nlon)
        records, neural = plane_records.describe(planes, quality, max_abs_error, grid)
        projector = Projector(grid, nside, precision=precision_for(nside, bounded=max_abs_error is not None))
        step = planes_per_batch(nside)
        unreachable: set[int] = set()  # planes whose bound no correction holds: stored losslessly
        batches = [neural[start:start + step] for start in range(0, len(neural), step)]

        def analyse(batch):
            faces = np.stack([ring_to_faces(projector.to_healpix(p)) for _, p in batch]).astype(np.float32)
            return faces, self.transform.analyse(faces, condition)

        def analyse_and_estimate(batch):
            """The batch's analysis, and the latent sizes each rate search estimates first (its
            finest and coarsest rates, to hold against the rival's size)."""
            faces, analysed = analyse(batch)
            ends = (float(self.model.config.qualities - 1), 0.0)
            sizes = [{q: self._estimated_size(a, q) for q in ends} if target_mae is not None else {} for a in analysed]
            return faces, analysed, sizes

        rivals: dict[int, conventional.Candidate] = {}   # SZ3 / SPERR records to beat, found first
        first = None   # the first batch's analysis, run beside the conventional search (beside.py)
        if batches and options.conventional and (max_abs_error is not None or target_mae is not None):
            rivals, first = side_by_side(
                functools.partial(self._conventional_candidates, planes, [i for i, _ in neural], grid, max_abs_error,
                                  target_mae, conventional.coders_for(options.effort, max_abs_error),
                                  torch.get_num_threads()),
                functools.partial(analyse_and_estimate, batches[0]))
        losing: set[int] = set()   # planes whose every network rate is larger than their rival
        refine = options.effort == "max" and max_abs_error is None   # latent refinement (network/refine.py)
        for n, batch in enumerate(batches):
            faces, analysed, estimates = first if n == 0 and first is not None else (*analyse(batch), [{}] * len(batch))
            searches: list[PlaneRateSearch | None] = [None] * len(batch)
            approx: list[np.ndarray | None] = [None] * len(batch)
            if target_mae is not None:
                for k, (i, _) in enumerate(batch):
                    rival = rivals.get(i)
                    limit = None if rival is None else rival.stored_bytes(arr.dtype) * (REFINE_HEADROOM if refine else 1)
                    searches[k] = self._rate_search(analysed[k], planes[i], records[i], projector, grid, arr.dtype,
                                                    options, limit, estimates[k])
                    try:
                        records[i].quality, approx[k] = searches[k].quality()
                    except correction.BoundUnreachable:
                        unreachable.add(i)
                    except NetworkCannotWin:
                        losing.add(i)
            if all(i in losing for i, _ in batch):
                continue   # every plane keeps its rival's record: no latents to code
            gains = np.stack([self.model.gain(records[i].quality) for i, _ in batch])
            y_all, z_all = self.transform.latents(analysed, gains)
            if refine:
                for k, (i, _) in enumerate(batch):
                    if i not in losing | unreachable:
                        self._refine(k, faces[k], analysed, y_all, z_all, approx, searches[k], records[i], projector, condition)
            for (i, _), y, z in zip(batch, y_all, z_all):
                if i not in losing:   # a losing plane's record is its rival's: no range coding for it
                    records[i].words, records[i].escapes = self.latents.encode(y, z)
            if max_abs_error is not None or target_mae is not None:
                unreachable |= self._add_corrections([i for i, _ in batch], records, planes, approx, searches, y_all,
                                                     projector, arr.dtype, max_abs_error, condition,
                                                     unreachable | losing)
        for i in unreachable - losing:
            records[i] = plane_records.lossless(planes[i])
        for i, rival in rivals.items():
            rec = records[i]
            if i in losing or rival.stored_bytes(arr.dtype) < len(rec.words) + len(rec.escapes) + len(rec.correction):
                records[i] = plane_records.conventional(rival, planes[i])
        def packed(plane_records_: list) -> bytes:
            return bitstream.pack(Chunk(bytes.fromhex(self.model.sha256), arr.dtype, 0, nside, grid.nlat, grid.nlon,
                                        grid.lat_first, grid.lon_first, tuple(arr.shape), plane_records_,
                                        target_mae or 0.0, variable_kind=condition.kind, level=condition.level,
                                        projection_iterations=projector.iterations,
                                        projection_method=projector.method,
                                        projection_precision=projector.precision))

        data = packed(records)
        kept = [i for i in rivals if records[i].kind == KIND_NEURAL]
        if kept:   # a network plane also costs its record's fields and, alone, the chunk's network header
            alternative = list(records)
            for i in kept:
                alternative[i] = plane_records.conventional(rivals[i], planes[i])
            other = packed(alternative)
            if len(other) < len(data):
                data = other
        return data

    @staticmethod
    def _conventional_candidates(planes, indices, grid, max_abs_error, target_mae, coders, threads: int) -> dict:
        """The smallest SZ3 / SPERR (/ EBCC) record (``coding/conventional.py``) that keeps the chunk's
        promises, per varying plane (``indices``) of ordinary magnitude. Found before the
        network runs, so that its size caps the network's rate search; the smaller record wins.
        ``threads``: torch's count as the chunk's caller set it (this runs in a worker thread)."""
        weights = area_weights(grid)
        found = {}
        for i in indices:
            plane = planes[i]
            finite = ~np.isnan(plane)
            if plane_records.scale_exponent(plane[finite]):
                continue
            filled = np.where(finite, plane, plane[finite].mean(dtype=np.float64)).astype(plane.dtype)
            candidate = conventional.best_candidate(
                filled, finite, PlaneMAE(plane, weights), max_abs_error, target_mae, coders, grid=grid, threads=threads)
            if candidate is not None:
                found[i] = candidate
        return found

    def _latents_at(self, analysed, quality: float):
        """(y, z) of one analysed plane at ``quality``."""
        y, z = self.transform.latents(analysed[None], self.model.gain(quality)[None])
        return y[0], z[0]

    def _estimated_size(self, analysed, quality: float) -> int:
        """The bytes of one plane's latents at ``quality``, from the float entropy model."""
        return self.latents.estimated_size(*self._latents_at(analysed, quality))

    def _rate_search(self, analysed, original, rec, projector, grid, dtype, options,
                     size_limit: int | None = None, estimates: dict | None = None) -> PlaneRateSearch:
        """The target-MAE search of one plane, replaying this engine's decoder; ``estimates``:
        latent sizes already estimated ({quality: bytes})."""
        condition = options.condition

        def replay(quality: float) -> np.ndarray:
            rec.quality = quality
            y_hat = self.transform.rounded(analysed[None], self.model.gain(quality)[None])
            return self._reconstruct(y_hat, projector, [rec], condition)[0]

        def coded_size(quality: float) -> int:
            return self.latents.size(*self._latents_at(analysed, quality))

        search = PlaneRateSearch(original, area_weights(grid), dtype, options.target_mae, options.max_abs_error,
                                 self.model.config.qualities - 1, replay, coded_size, size_limit,
                                 functools.partial(self._estimated_size, analysed))
        search.estimates.update(estimates or {})
        return search

    def _refine(self, k, faces, analysed, y_all, z_all, approx, search, rec, projector, condition) -> None:
        """effort="max": refine plane k's latents (``network/refine.py``) in place. Kept only
        where the latents get smaller and, with a target, the replay still meets it; planes
        that need a correction record keep theirs (max_abs_error is not refined at all).
        With a target, refinement usually lowers the MAE too, so a coarser rate is refined
        next, where the search's own replays say it would then meet the target, and if that
        misses, halfway back (at most COARSER_TRIES refinements more)."""
        if search is not None and not search.meets_target(approx[k]):
            return
        size = self.latents.size(y_all[k], z_all[k])

        def attempt(quality, y) -> bool:
            nonlocal size
            refined = self.refiner.refine(faces, y, quality, condition)
            z = self.transform.hyper_latents(refined)
            refined_size = self.latents.size(refined, z)
            if refined_size >= size:
                return False
            replay = None
            if search is not None:
                replay = self._reconstruct(np.round(refined)[None].astype(np.float32), projector,
                                           [dataclasses.replace(rec, quality=quality)], condition)[0]
                if not search.meets_target(replay):
                    return False
            size, rec.quality, y_all[k], z_all[k], approx[k] = refined_size, quality, refined, z, replay
            return True

        unrefined_mae = None if search is None else search.mae(approx[k])
        if not attempt(rec.quality, y_all[k]) or search is None:
            return
        factor = search.mae(approx[k]) / unrefined_mae   # how much refinement lowered the MAE at this rate
        quality = search.coarser_quality(rec.quality, factor) if factor < 1 else None
        for _ in range(COARSER_TRIES):
            if quality is None or quality >= rec.quality:
                return
            y = self.transform.latents(analysed[k][None], self.model.gain(quality)[None])[0][0]
            if attempt(quality, y):
                return
            quality = float(np.float32((quality + rec.quality) / 2))

    @functools.cached_property
    def refiner(self):
        from ..network.refine import LatentRefiner

        return LatentRefiner(self.model)

    def _add_corrections(self, indices, records, planes, approx, searches, y_all, projector, dtype, max_abs_error,
                         condition, skip) -> set[int]:
        """Replay the decoder where no rate search already did, then code what it will miss
        (correction.py): within max_abs_error, and tighter where the MAE target needs it.
        Returns the planes (not in ``skip``) whose bound no correction holds."""
        missing = [k for k, a in enumerate(approx) if a is None and indices[k] not in skip]
        if missing:
            recs = [records[indices[k]] for k in missing]
            y_hat = np.round(y_all[missing]).astype(np.float32)
            for k, plane in zip(missing, self._reconstruct(y_hat, projector, recs, condition)):
                approx[k] = plane
        unreachable = set()
        for i, plane, search in zip(indices, approx, searches):
            if i in skip:
                continue
            try:
                bound = max_abs_error if search is None else search.correction_bound(plane)
                if bound is not None:
                    rec = records[i]
                    q, rec.correction_step = correction.quantise(planes[i], plane, bound, dtype)
                    rec.correction = correction.encode(q)
            except correction.BoundUnreachable:
                unreachable.add(i)
        return unreachable

    def _reconstruct(self, y_hat: np.ndarray, projector: Projector, records, condition: Condition) -> list[np.ndarray]:
        """Decoder-side planes (float64, before NaN masking) from rounded latents at each
        record's quality; shared by decode and by encode's replays so that both compute the
        same numbers."""
        faces = self.transform.synthesise(y_hat, np.stack([self.model.gain(rec.quality) for rec in records]), condition)
        return plane_records.to_planes(faces, projector, records)

    # -- decode ------------------------------------------------------------------------
    def decode(self, data, grid: LatLonGrid | None = None, shape: tuple | None = None,
               max_bytes: int | None = None) -> np.ndarray:
        """Bytes -> array. ``shape`` (the chunk shape the caller knows) and ``max_bytes`` (what
        its buffer holds) are checked against the header before anything is allocated."""
        return self.decode_chunk(bitstream.unpack(data, shape, max_bytes), grid)

    def decode_chunk(self, chunk: Chunk, grid: LatLonGrid | None = None) -> np.ndarray:
        """A parsed chunk -> array (``plane_records.check_chunk`` first)."""
        plane_records.check_chunk(chunk, self.model.sha256, grid, self.model.name)
        if not any(rec.kind == KIND_NEURAL for rec in chunk.planes):   # v8 keeps no sphere fields for these
            return plane_records.finish_planes(plane_records.start_planes(chunk)[0], chunk)
        finest = self.model.config.qualities - 1
        if any(rec.kind == KIND_NEURAL and not 0 <= rec.quality <= finest for rec in chunk.planes):
            raise ValueError(f"not a valid xneuralcodec chunk: a plane's quality is outside 0..{finest}")
        chunk_grid = LatLonGrid(chunk.nlat, chunk.nlon, chunk.lat_first, chunk.lon_first)
        check_nside(chunk.nside, chunk_grid, self.model)
        out, neural = plane_records.start_planes(chunk)
        projector = Projector(chunk_grid, chunk.nside, chunk.projection_iterations, chunk.projection_method,
                              chunk.projection_precision)
        condition = Condition(chunk.variable_kind, chunk.level)
        step = planes_per_batch(chunk.nside)
        for start in range(0, len(neural), step):
            batch = neural[start:start + step]
            recs = [chunk.planes[i] for i in batch]
            y = np.stack([self.latents.decode(rec.words, rec.escapes, chunk.nside) for rec in recs])
            for i, rec, plane in zip(batch, recs, self._reconstruct(y, projector, recs, condition)):
                if rec.correction_step:
                    q = correction.decode(rec.correction, (chunk.nlat, chunk.nlon), chunk.version)
                    with np.errstate(over="ignore", invalid="ignore"):  # near float64's limits, or forged
                        plane = plane + q * rec.correction_step
                out[i] = plane
        return plane_records.finish_planes(out, chunk)

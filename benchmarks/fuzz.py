"""Fuzz the decoder with damaged real chunks: ``python -m benchmarks.fuzz --cases 100000``.

Chunks of real fields (2.5 and 1 degree, with NaN holes, constant and all-NaN planes, with and
without ``max_abs_error``, scaled and lossless planes, and format v7 conventional SZ3 / SPERR
planes; v9: SPERR step-mode planes and a Jacobi back projection; 0.12.0: a hyperprior-v5.2 chunk (0.13.0:
a hyperprior-v5.3 one, whose context convolution skips zero taps, and a v10 one with a single-precision
back projection; 0.14.0: v11 chunks, whose conventional records keep only a short frame of their
coder's stream, with SZ3, SPERR, EBCC, float32 and float64 planes; 0.15.0: a v12 precipitation
plane under the 16/17 power and an interpolation-coder plane; the SZ3 seed is 0.14.0's golden
chunk; 0.16.0: v13 latitude-weighted planes, float32 and float64; 0.20.0: a hyperprior-v5.4 chunk of a
plane minus its orographic prediction; 0.21.0: a v16 AV1 intra plane; 0.22.0: the float64 SPERR seed
written with ``effort="fast"`` again, where the default now writes AV1; 0.23.0: a v17 plane of the
interpolation coder with clamped predictions), and
``model="auto"`` codecs, which look the weights up by the chunk's sha256 prefix) are mutated in five ways: random bit flips, truncation, random
bytes, and header or payload mutations whose CRC is recomputed so that they get past the
checksum into the parser, the range decoder and the network. Each case must either raise
``ValueError`` or decode to an array of the declared shape and dtype; anything else (another
exception type, a wrong shape, a case slower than ``--slow`` seconds) is a finding. Since 0.14.0,
after each case on a chunk without network planes the intact chunk is decoded again and must
give its first values: a damaged stream must not break the shared WebAssembly coders for the
chunks after it (a trap inside SZ3 did, before 0.14.0). The
summary (counts per mutation and outcome, slowest case, findings) goes to a JSON file.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.format import bitstream

MUTATIONS = ("bit flips", "truncation", "random bytes", "header with valid crc", "payload with valid crc")


def seed_chunks(data_dir: Path) -> list[tuple[NeuralCodec, bytes]]:
    import xarray as xr

    gfs = xr.open_dataset(data_dir / "global/G08_gfs_pl_sfc_2.5deg_init2011-01-10T12_valid2011-01-15T12_f120.nc")
    era5 = xr.open_dataset(data_dir / "global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc")
    t = gfs["t"].isel(time=0).values[10:13].astype(np.float32)          # 3 levels, 73 x 144
    t[1, 5:20, 30:60] = np.nan
    mixed = np.stack([t[0], np.full_like(t[0], np.nan), np.full_like(t[0], 250.0), t[2]])
    msl = era5["msl"].isel(time=-1).values.astype(np.float32)           # 181 x 360
    u10 = era5["u10"].isel(time=-1).values.astype(np.float32)
    tp = era5["tp"].isel(time=-1).values.astype(np.float32)
    t2m = era5["t2m"].isel(time=-1).values.astype(np.float32)
    grid25 = {"nlat": 73, "nlon": 144, "lat_first": 90.0, "lon_first": 0.0}
    out = []
    for codec, arr in [
        (NeuralCodec(quality=3, grid=grid25), t),
        (NeuralCodec(quality=0, grid=grid25), mixed),
        (NeuralCodec(quality=2, grid=grid25, max_abs_error=0.3), t[0]),
        (NeuralCodec(quality=4), msl),
        (NeuralCodec(quality=3, grid=grid25), t.astype(np.float64) * 1e-50),           # v6: scaled planes
        (NeuralCodec(grid=grid25, max_abs_error=1e-12, conventional=False), t[0].astype(np.float64)),  # lossless
        (NeuralCodec(grid=grid25, target_mae=0.1), t),                                   # v7: SPERR planes
        (NeuralCodec(grid=grid25, max_abs_error=0.3), mixed),                            # v7: SZ3 / SPERR planes
        (NeuralCodec(quality=3, nside=128), msl),                                        # v9: Jacobi back projection
        (NeuralCodec(model="hyperprior-v5.2", quality=5), msl),                          # 0.12: v5.2's lighter g_s
        (NeuralCodec(model="hyperprior-v5.3", quality=4), msl),                          # 0.13: v5.3's lighter entropy model
        (NeuralCodec(model="hyperprior-v5.3", quality=4, nside=128), msl),               # v10: single-precision projection
        (NeuralCodec(target_mae=20.0, effort="max"), msl),                                # v11: EBCC short frame
        (NeuralCodec(max_abs_error=1.0), u10),                                            # v12: interpolation coder
        (NeuralCodec(target_mae=3.64e-6), tp),                                           # v12: 16/17 power
        (NeuralCodec(target_mae=0.4, variable="t2m"), t2m),                              # v13, v14: latitude weighting, orographic prediction
        # v11: float64 SPERR short frames (effort="fast": since 0.21.0 the default writes AV1 records here)
        (NeuralCodec(grid=grid25, target_mae=0.05, effort="fast"), t.astype(np.float64)),
        (NeuralCodec(quality=3, variable="t2m"), t2m),                                   # v15: the network's orographic prediction
        (NeuralCodec(quality=1, max_abs_error=1.0, conventional=False), t2m),            # v15: ... with a correction
        (NeuralCodec(model="hyperprior-v5.4", quality=6, variable="t2m"), t2m),       # 0.20: v5.4 on a predicted plane
        (NeuralCodec(target_mae=0.5), u10),                                              # v16: AV1 intra
        (NeuralCodec(max_abs_error=1.46e-5), tp),                                        # v17: the clamped interpolation coder
    ]:
        out.append((codec, codec.encode(arr)))
    # v11: an SZ3 short frame (since 0.15.0 the interpolation coder takes SZ3's place when writing)
    golden = Path(__file__).resolve().parents[1] / "tests" / "golden" / "v0.14.0"
    name = "2.5deg_lossless_max_abs_error"
    out.append((NeuralCodec.from_config(json.loads((golden / f"{name}.json").read_text())),
                (golden / f"{name}.bin").read_bytes()))
    return out


def with_crc(body: bytes) -> bytes:
    body = body[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def mutate(blob: bytes, how: str, rng: np.random.Generator) -> bytes:
    b = bytearray(blob)
    if how == "bit flips":
        for _ in range(int(rng.integers(1, 9))):
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        return bytes(b)
    if how == "truncation":
        return bytes(b[: int(rng.integers(len(b)))])
    if how == "random bytes":
        return rng.bytes(int(rng.integers(0, 2 * len(b))))
    # v7 header: fixed part, u32 shape (ndim at byte 17), target and level; records ~29 bytes each
    head = bitstream._HEAD7.size + 4 * b[17] + bitstream._TAIL7.size if len(b) > 17 else len(b)
    if how == "header with valid crc":
        lo, hi = 0, min(len(b) - 4, head + 29 * 4)
    else:
        lo, hi = min(head + 29 * 4, len(b) - 5), len(b) - 4
    for _ in range(int(rng.integers(1, 5))):
        pos = int(rng.integers(lo, max(lo + 1, hi)))
        b[pos] = int(rng.integers(256)) if rng.random() < 0.5 else b[pos] ^ (1 << int(rng.integers(8)))
    return with_crc(bytes(b))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--slow", type=float, default=5.0, help="seconds after which a case counts as a finding")
    p.add_argument("--out", default="benchmarks/results/fuzz.json")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    seeds = seed_chunks(Path(args.data))
    # chunks without network planes decode in milliseconds: re-decoded after each of their cases
    intact = {k: codec.decode(blob) for k, (codec, blob) in enumerate(seeds)
              if all(p.kind != bitstream.KIND_NEURAL for p in bitstream.unpack(blob).planes)}
    outcomes = collections.Counter()
    findings = []
    slowest = (0.0, None, None, None)   # seconds, mutation, case, seed chunk: replayable from --seed
    started = time.perf_counter()
    for case in range(args.cases):
        codec, blob = seeds[case % len(seeds)]
        how = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        damaged = mutate(blob, how, rng)
        t0 = time.perf_counter()
        try:
            back = codec.decode(damaged)
            expected = bitstream.unpack(damaged)
            ok = back.shape == expected.shape and back.dtype == expected.dtype
            outcome = "decoded (declared shape and dtype)" if ok else "FINDING: wrong shape or dtype"
        except ValueError:
            outcome = "ValueError"
        except Exception as exc:  # noqa: BLE001 -- the point is to catch anything else
            outcome = f"FINDING: {type(exc).__name__}"
            findings.append({"case": case, "mutation": how, "error": repr(exc)[:300]})
        elapsed = time.perf_counter() - t0
        seed = case % len(seeds)
        if seed in intact:
            try:
                same = np.array_equal(codec.decode(blob), intact[seed], equal_nan=True)
            except Exception:  # noqa: BLE001
                same = False
            if not same:
                outcome = "FINDING: the intact chunk no longer decodes after this case"
                findings.append({"case": case, "mutation": how, "error": outcome})
        if elapsed > slowest[0]:
            slowest = (elapsed, how, case, seed)
        if elapsed > args.slow:
            findings.append({"case": case, "mutation": how, "error": f"slow: {elapsed:.1f} s"})
        outcomes[(how, outcome)] += 1
        if (case + 1) % 10_000 == 0:
            print(f"{case + 1} cases, {len(findings)} findings, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    summary = {
        "command": "python -m benchmarks.fuzz " + " ".join(sys.argv[1:] if argv is None else argv),
        "cases": args.cases, "seed": args.seed, "wall_s": time.perf_counter() - started,
        "machine": platform.platform(),
        "outcomes": {f"{how}: {outcome}": n for (how, outcome), n in sorted(outcomes.items())},
        "slowest_case_s": slowest[0], "slowest_mutation": slowest[1], "slowest_case": slowest[2],
        "slowest_seed_chunk": slowest[3],
        "findings": findings[:100], "finding_count": len(findings),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("cases", "wall_s", "finding_count", "slowest_case_s")}), file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())

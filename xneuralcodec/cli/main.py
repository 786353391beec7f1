"""The ``xneuralcodec`` command: compress, decompress, inspect, evaluate and benchmark stores.

This module parses arguments, dispatches to the commands and turns the errors a user can
fix (missing file, unknown variable, non-global grid, existing output, bad option value)
into one ``error: ...`` line on stderr and a non-zero exit code; anything else is a bug
and keeps its traceback. Reading and atomic writing live in ``files.py``, tables in
``report.py``, plots in ``plots.py``, the benchmark in ``bench.py``. The codec flags are
derived from ``options.CodecOptions``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..options import AUTO_NSIDE, PAPER, PER_VARIABLE, flag_options, options_for
from ..sphere.coordinates import lat_lon_dims
from .files import (
    GRIB_SUFFIXES,
    NETCDF_SUFFIXES,
    CLIError,
    atomic_output,
    check_output,
    open_input,
    open_store,
    parse_chunks,
    parse_isel,
    plane_count,
    shard_shape,
    without_encoding,
    write_netcdf,
    write_zarr,
)
from .progress import progress
from .signals import Terminated, exit_code, interrupts_as_exceptions

USER_ERRORS = (CLIError, ValueError, TypeError, KeyError, OSError)

EXAMPLES = """\
examples:
  xneuralcodec compress era5.nc era5.zarr                 # every lat/lon variable, quality 3, Zarr format 3
  xneuralcodec evaluate era5.nc era5.zarr --out plots/    # errors per variable, maps and spectra as PNG
  xneuralcodec info era5.zarr
  xneuralcodec decompress era5.zarr era5_decoded.nc
  xneuralcodec bench era5.nc --isel time=0:4
  xneuralcodec demo                                       # the README's sample run (= python -m xneuralcodec)

'xneuralcodec COMMAND --help' describes each command's options.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error: ...`` line (exit code 2), not usage plus message."""

    def error(self, message):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


# -- option types: a bad value is refused by argparse with the option's name ---------------

def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _names(values) -> list[str] | None:
    if values is None:
        return None
    return [part for value in values for part in value.split(",") if part]


# -- the commands --------------------------------------------------------------------------

def codec_options(args, variables=()) -> dict:
    """Only the options the user gave, so the codec's own defaults stay the defaults.

    ``--target-mae`` and ``--max-abs-error`` take a bare number (every variable), VAR=NUMBER
    pairs (those variables; with a bare number too, it is the others' value) or, for the
    target, ``paper`` (the variable table's targets): resolved per variable by ``encoding()``."""
    given = {}
    for field in flag_options():
        value = getattr(args, field.name)
        if value is None:
            continue
        given[field.name] = per_variable_value(field.name, value, variables) if field.name in PER_VARIABLE else value
    if args.coarser_spheres:
        given["nside"] = AUTO_NSIDE
    return given


def note_untargeted(options: dict, encoding: dict) -> None:
    """Say which variables a per-variable or paper target leaves at the default quality."""
    target = options.get("target_mae")
    if not isinstance(target, dict) and target != PAPER:
        return
    for name, entry in encoding.items():
        codec = entry.get("serializer") or entry["compressors"][0]
        if codec.options.target_mae is None:
            why = "has no paper MAE target" if target == PAPER else "is not given a target"
            print(f"note: {name} {why}: coded at quality {codec.options.quality}", file=sys.stderr)


def per_variable_value(name: str, tokens: list, variables):
    """[(variable or None, value), ...] from the command line -> a number, "paper" or a dict."""
    shared = [value for var, value in tokens if var is None]
    named = {var: value for var, value in tokens if var is not None}
    if len(shared) > 1:
        raise CLIError(f"--{name.replace('_', '-')}: give one bare value for every variable, got {len(shared)}")
    if not named:
        return shared[0]
    if not shared:
        return named
    flag = f"--{name.replace('_', '-')}"
    unknown = sorted(set(named) - set(variables))
    if unknown:
        raise CLIError(f"{flag}: {', '.join(unknown)} is not among the variables being coded ({', '.join(variables)})")
    resolved = {var: options_for({name: shared[0]}, var)[name] for var in variables}
    return {**resolved, **named}


def option_flag(field):
    """argparse type of a codec option: the flag's text read, then checked by the option's
    own parser, so that a bad value is refused with the codec's message and the flag's name.
    Per-variable options read ``VAR=VALUE`` too (and ``paper`` for the target)."""
    def convert(text: str):
        variable, value = (None, text)
        if field.name in PER_VARIABLE and "=" in text:
            variable, value = text.split("=", 1)
            if not variable:
                raise argparse.ArgumentTypeError(f"expected VARIABLE=VALUE, got {text!r}")
        try:
            if field.name == "target_mae" and value == PAPER and variable is None:
                return None, PAPER
            parsed = field.metadata["parse"](field.metadata["flag"](value))
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return (variable, parsed) if field.name in PER_VARIABLE else parsed
    convert.__name__ = field.name
    return convert


def add_codec_flags(group) -> None:
    """One ``--name`` flag per codec option marked as a flag in ``CodecOptions``."""
    for field in flag_options():
        per_variable = field.name in PER_VARIABLE
        metavar = field.metadata["metavar"]
        extra = ("; VAR=VALUE pairs set one variable at a time" + (", 'paper' the paper's target of each"
                                                                    if field.name == "target_mae" else ""))
        group.add_argument(f"--{field.name.replace('_', '-')}", type=option_flag(field), nargs="+" if per_variable else None,
                           metavar=f"[VAR=]{metavar}" if per_variable else metavar,
                           help=f"{field.metadata['help']}{extra if per_variable else ''} (default {field.default!r})"
                           .replace("%", "%%"))   # argparse formats help with %


def neural_variables(ds, requested) -> list[str]:
    """The variables to give the neural codec: those named, or every float variable on a lat/lon grid."""
    if requested is not None:
        unknown = [v for v in requested if v not in ds.data_vars]
        if unknown:
            raise ValueError(f"unknown variable(s) {', '.join(unknown)}; the input's data variables are "
                             f"{', '.join(map(str, ds.data_vars)) or 'none'}")
        return list(dict.fromkeys(requested))
    return [str(name) for name, da in ds.data_vars.items()
            if lat_lon_dims(da) is not None and da.dtype in (np.float32, np.float64)]


def check_apart(source, output) -> None:
    """An output may not be its input, lie inside it (in.zarr -> in.zarr/x.zarr: the run
    would read what it writes) or contain it (--overwrite would delete the input)."""
    src, out = Path(source).resolve(), Path(output).resolve()
    if src == out:
        raise CLIError("output and input are the same path")
    if src in out.parents:
        raise CLIError(f"output {str(output)!r} is inside the input {str(source)!r}: choose a path outside it")
    if out in src.parents:
        raise CLIError(f"output {str(output)!r} contains the input {str(source)!r}: choose another output")


def cmd_compress(args) -> int:
    import xneuralcodec

    output = Path(args.output)
    if output.suffix.lower() in NETCDF_SUFFIXES + GRIB_SUFFIXES:
        raise CLIError(f"output {str(output)!r} names a {output.suffix} file, but compress writes a Zarr store "
                       "(e.g. out.zarr)")
    check_apart(args.input, output)
    check_output(output, args.overwrite)
    isel, chunks = parse_isel(args.isel), parse_chunks(args.chunks)
    no_shards = args.shards == ["none"]
    shards = None if args.shards is None or no_shards else parse_chunks(args.shards, "--shards")
    if args.shards is not None and args.zarr_format != 3:
        raise CLIError("--shards needs --zarr-format 3 (Zarr 2 has no shards)")
    ds = open_input(args.input, isel)
    variables = neural_variables(ds, _names(args.variables))
    # with nothing eligible, encoding() itself says why (not lat/lon, wrong dim order, not float)
    options = codec_options(args, variables)
    encoding = xneuralcodec.encoding(ds, zarr_format=args.zarr_format, variables=variables or None, **options)
    note_untargeted(options, encoding)
    leading = {d for name in encoding for d in ds[name].dims[:-2]}
    for flag, sizes in (("--chunks", chunks), ("--shards", shards or {})):
        for dim in sizes:
            if dim not in leading:
                raise ValueError(f"{flag}: no compressed variable has dimension {dim!r} "
                                 f"(leading dims: {', '.join(sorted(map(str, leading))) or 'none'})")
    for name, entry in encoding.items():
        da = ds[name]
        entry["chunks"] = tuple(min(chunks.get(d, 1), n) for d, n in zip(da.dims[:-2], da.shape[:-2])) + da.shape[-2:]
        if args.zarr_format == 3:
            default = entry.pop("shards", None)
            shape = None if no_shards else shard_shape(da.dims, entry["chunks"], default, shards)
            if shape is not None:
                entry["shards"] = shape
    ds = without_encoding(ds)
    t0 = time.perf_counter()
    total = sum(plane_count(da) for da in ds.data_vars.values())
    with atomic_output(output, args.overwrite) as tmp, \
            progress(total=total, desc="compress", unit="plane", enabled=not args.no_progress) as bar:
        write_zarr(ds, tmp, encoding, args.zarr_format, bar)
    seconds = time.perf_counter() - t0
    from .report import directory_size

    raw = sum(v.nbytes for v in ds.variables.values())
    stored = directory_size(output)
    lossless = [str(n) for n in ds.data_vars if n not in encoding]
    print(f"{args.input} -> {output} (Zarr format {args.zarr_format}) in {seconds:.1f} s")
    print(f"neural codec: {', '.join(encoding)}" + (f"; copied losslessly: {', '.join(lossless)}" if lossless else ""))
    print(f"{raw / 1e6:.2f} MB -> {stored / 1e6:.3f} MB on disk (ratio {raw / stored:.1f}); "
          f"details: xneuralcodec info {output}")
    return 0


def cmd_decompress(args) -> int:
    output = Path(args.output)
    check_apart(args.store, output)
    check_output(output, args.overwrite)
    ds = without_encoding(open_store(args.store))
    to_netcdf = output.suffix.lower() in NETCDF_SUFFIXES
    total = sum(plane_count(da) for da in ds.data_vars.values())
    t0 = time.perf_counter()
    with atomic_output(output, args.overwrite) as tmp, \
            progress(total=total, desc="decompress", unit="plane", enabled=not args.no_progress) as bar:
        if to_netcdf:
            write_netcdf(ds, tmp, bar, history=_history(["decompress", args.store, output]))
        else:
            uncompressed = {name: {"compressors": None, "filters": None} for name in ds.variables}
            write_zarr(ds, tmp, uncompressed, args.zarr_format, bar)
    kind = "netCDF" if to_netcdf else f"uncompressed Zarr format {args.zarr_format}"
    raw = sum(v.nbytes for v in ds.variables.values())
    print(f"{args.store} -> {output} ({kind}): {len(ds.data_vars)} variables, {raw / 1e6:.2f} MB "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _history(argv) -> str:
    """A CF ``history`` line: when, and the command that made the file."""
    from .. import __version__

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp}: xneuralcodec {' '.join(map(str, argv))} (xneuralcodec {__version__})"


def cmd_info(args) -> int:
    from .report import format_info, inspect_store

    summary = inspect_store(args.store)
    print(json.dumps(summary, indent=2) if args.json else format_info(summary))
    return 0


def cmd_evaluate(args) -> int:
    from .report import format_evaluate, inspect_store, plane_index

    out = Path(args.out) if args.out else None
    if out is not None:
        from .plots import pyplot

        pyplot()  # fail before any work when matplotlib is missing
        if out.exists() and not out.is_dir():
            raise CLIError(f"--out {str(out)!r} exists and is not a directory")
    summary = inspect_store(args.store)
    arrays = {a["name"]: a for a in summary["arrays"]}
    original, store = open_input(args.original), open_store(args.store)
    requested = _names(args.variables)
    if requested is not None:
        unknown = [v for v in requested if v not in store.data_vars]
        if unknown:
            raise ValueError(f"unknown variable(s) {', '.join(unknown)}; the store's data variables are "
                             f"{', '.join(map(str, store.data_vars))}")
        variables = requested
    else:
        variables = [str(n) for n, da in store.data_vars.items() if lat_lon_dims(da) is not None]
    missing = [v for v in variables if v not in original.data_vars]
    if missing:
        raise ValueError(f"variable(s) {', '.join(missing)} of the store are not in {args.original}")
    if not variables:
        raise ValueError(f"the store {args.store} has no variable on a lat/lon grid")
    if out is not None:  # check --time and --level on every variable before any work
        for name in variables:
            plane_index(store[name], args.time, args.level)
    created = out is not None and not out.exists()
    rows, written = [], []
    try:
        for name in progress(variables, desc="evaluate", unit="var", enabled=not args.no_progress):
            rows.append(_evaluate_variable(name, original, store, arrays.get(name, {}), out, args.time, args.level,
                                           written))
    except BaseException:  # plots of a failed run are not left behind, nor a directory this run created
        for plot in written:
            plot.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    if args.json:
        print(json.dumps({"original": str(args.original), "store": str(args.store), "variables": rows}, indent=2))
    else:
        print(format_evaluate(rows, str(args.store), str(args.original)))
    return 0


def _evaluate_variable(name, original, store, entry: dict, out: Path | None, time_index: int,
                       level_index: int | None, written: list[Path]) -> dict:
    """Errors of one variable over all its planes, and its two plots when ``out`` is given.

    Each plot is written atomically and then listed in ``written``, so a failed run can remove them.
    """
    from ..evaluation.metrics import weighted_errors
    from .report import align_pair, codec_label, grid_of, plane_index

    orig, recon = align_pair(original[name], store[name])
    grid = grid_of(recon)
    orig_values, recon_values = orig.values, recon.values
    row = {"variable": name, "units": str(original[name].attrs.get("units", "")),
           "codec": codec_label(entry) if entry else "?", "planes": plane_count(recon),
           "ratio": entry.get("ratio"), **weighted_errors(orig_values, recon_values, grid), "plots": []}
    if out is None:
        return row
    from .plots import plot_maps, plot_spectrum

    out.mkdir(parents=True, exist_ok=True)
    index, label = plane_index(recon, time_index, level_index)
    key = tuple(index[d] for d in recon.dims[:-2])
    a, b = orig_values[key], recon_values[key]
    title = f"{name} ({label})" if label else name
    tag = f"t{time_index}" + ("" if level_index is None else f"_l{level_index}")
    maps = out / f"{name}_map_{tag}.png"
    plot_maps(maps, a, b, grid, f"{title}: MAE {row['mae']:.4g} {row['units']} over all planes", row["units"])
    written.append(maps)
    row["plots"].append(str(maps))
    nside = (entry.get("codec_config") or {}).get("nside")
    nside = nside if isinstance(nside, int) else None  # "auto": each chunk's header has its own
    spectrum = out / f"{name}_spectrum_{tag}.png"
    try:
        plot_spectrum(spectrum, a, b, grid, f"{title}: spherical power spectrum", 2 * nside if nside else None)
        written.append(spectrum)
        row["plots"].append(str(spectrum))
    except ValueError as exc:  # NaN-masked fields (e.g. SST) have no spherical spectrum
        row["spectrum_skipped"] = str(exc)
    return row


def cmd_bench(args) -> int:
    from .bench import bench_variable, format_bench, references
    from .report import grid_of

    ds = open_input(args.input, parse_isel(args.isel))
    variables = neural_variables(ds, _names(args.variables))
    if not variables:
        raise ValueError(f"no float data variable of {args.input} has latitude and longitude as its last two dims "
                         f"(data variables: {', '.join(map(str, ds.data_vars)) or 'none'})")
    options = codec_options(args, variables)
    available, unavailable = references() if not args.no_references else ({}, {"references": "--no-references"})
    results = []
    with progress(total=len(variables) * (1 + len(available)), desc="bench", unit="run",
                  enabled=not args.no_progress) as bar:
        for name in variables:
            da = ds[name]
            grid = grid_of(da)
            if da.dtype.kind != "f":
                raise TypeError(f"variable {name!r}: expected float data, got {da.dtype}")
            planes = np.asarray(da.values, dtype=np.float32)
            results.append(bench_variable(name, planes, grid, options, available, bar))
    units = {name: str(ds[name].attrs.get("units", "")) for name in variables}
    if args.json:
        print(json.dumps({"input": str(args.input), "variables": results, "unavailable": unavailable}, indent=2))
    else:
        print(format_bench(results, unavailable, units))
    return 0


def cmd_demo(args) -> int:
    from .demo import main as demo_main

    return demo_main(args.demo_args)


# -- the parser ----------------------------------------------------------------------------

def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(prog="xneuralcodec", description="Neural lossy compression of global lat/lon atmospheric fields "
                    "into Zarr stores that plain xarray reads.", epilog=EXAMPLES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"xneuralcodec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quiet = Parser(add_help=False)
    quiet.add_argument("--no-progress", action="store_true",
                       help="no progress bars (they are off anyway when stderr is not a terminal)")
    codec = Parser(add_help=False)
    group = codec.add_argument_group("codec options (default: the codec's own defaults)")
    add_codec_flags(group)
    group.add_argument("--coarser-spheres", action="store_true",
                       help="shorthand for --nside auto: with --target-mae, also try coarser HEALPix spheres and keep "
                            "the smallest chunk (far smaller for smooth fields at loose targets; drops their small scales)")
    subset = Parser(add_help=False)
    subset.add_argument("--variables", nargs="+", metavar="VAR",
                        help="only these variables get the neural codec (space or comma separated); "
                             "default: every float variable on a lat/lon grid")
    subset.add_argument("--isel", nargs="+", metavar="DIM=SEL",
                        help="subset by position first, e.g. time=0:4 level=2 (START:STOP[:STEP] or one index)")

    def add(name, help_, example, parents=()):
        return sub.add_parser(name, help=help_, description=help_, parents=list(parents),
                              epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("compress", "Compress a netCDF, GRIB or Zarr input into a Zarr store with the neural codec.",
            "xneuralcodec compress era5.nc era5.zarr --quality 4 --isel time=0:24 --chunks time=6",
            (subset, codec, quiet))
    p.add_argument("input", help="netCDF (.nc), GRIB (.grib/.grib2, needs cfgrib) or Zarr store")
    p.add_argument("output", help="Zarr store to create (e.g. out.zarr)")
    p.add_argument("--chunks", nargs="+", metavar="DIM=N",
                   help="chunk sizes of leading dims, e.g. time=1,level=1 "
                        "(default 1 each; lat/lon are always whole planes)")
    p.add_argument("--shards", nargs="+", metavar="DIM=N",
                   help="Zarr 3 shard sizes of leading dims, e.g. time=720, or 'none' (default: up to 256 MB of "
                        "raw data per shard, so a small file is one shard per variable)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3, help="Zarr format of the store (default 3)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT if it exists (only once the new store is complete)")
    p.set_defaults(func=cmd_compress)

    p = add("decompress", "Decode a compressed store to netCDF (OUTPUT ending in .nc) or to an uncompressed Zarr store.",
            "xneuralcodec decompress era5.zarr era5_decoded.nc", (quiet,))
    p.add_argument("store", help="Zarr store written by compress (or any Zarr store)")
    p.add_argument("output", help="OUTPUT.nc for netCDF, anything else for an uncompressed Zarr store")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3, help="format of a Zarr OUTPUT (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=cmd_decompress)

    p = add("info", "Show each variable's shape, chunks, codec config, bytes and ratio (reads metadata only).",
            "xneuralcodec info era5.zarr --json")
    p.add_argument("store", help="Zarr store (format 2 or 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = add("evaluate", "Compare a store with its original: area-weighted errors, ratio, maps and power spectra.",
            "xneuralcodec evaluate era5.nc era5.zarr --out plots/ --time 2", (quiet,))
    p.add_argument("original", help="the file or store the store was compressed from (matched by coordinates)")
    p.add_argument("store", help="the compressed Zarr store")
    p.add_argument("--out", metavar="DIR",
                   help="write PNG plots here: VAR_map_tT.png and VAR_spectrum_tT.png (needs matplotlib)")
    p.add_argument("--time", type=integer, default=0, metavar="INDEX",
                   help="time step (index along 'time', else the first leading dim) to plot (default 0)")
    p.add_argument("--level", type=integer, default=None, metavar="INDEX",
                   help="pressure level (index along the level dim) to plot (default the first)")
    p.add_argument("--variables", nargs="+", metavar="VAR", help="only these variables (default: every lat/lon variable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_evaluate)

    p = add("bench", "Measure the neural codec on your data against SZ3 and zstd at the same MAE.",
            "xneuralcodec bench era5.nc --variables t2m msl --isel time=0:8", (subset, codec, quiet))
    p.add_argument("input", help="netCDF, GRIB or Zarr input")
    p.add_argument("--no-references", action="store_true", help="only the neural codec")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="The README's sample run on held-out ERA5 data (same as python -m xneuralcodec; "
                       "'demo --help' for its options).", add_help=False)
    p.add_argument("demo_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_demo)
    return parser


def describe(exc: BaseException) -> str:
    """An exception as one line: messages from xarray and zarr may span several."""
    if isinstance(exc, KeyError) and exc.args:
        text = f"not found: {exc.args[0]}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__


def main(argv=None) -> int:
    """Run one command; returns the exit code (0 ok, 1 user error, 2 usage error, 130 SIGINT, 143 SIGTERM)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if argv[:1] == ["demo"]:  # everything after "demo" is the demo's, including --help
        return cmd_demo(argparse.Namespace(demo_args=argv[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        with interrupts_as_exceptions():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM as signals.Terminated
        print(f"error: interrupted ({'SIGTERM' if isinstance(exc, Terminated) else 'SIGINT'}); "
              "no partial output was left behind", file=sys.stderr)
        return exit_code(exc)
    except USER_ERRORS as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

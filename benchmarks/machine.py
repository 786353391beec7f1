"""What the numbers were measured on: CPU, cores, load, library versions.

Throughput depends on all of these, and on this project's shared 2-core machines also on
whatever else runs (``load_average`` at the start says so).
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

LIBRARIES = (
    "xneuralcodec", "numpy", "numcodecs", "torch", "ducc0", "pysz", "pcodec", "zfpy",
    "numcodecs-wasm", "numcodecs-wasm-sz3", "numcodecs-wasm-sperr", "numcodecs-wasm-ebcc",
    "numcodecs-wasm-zfp", "xarray", "netCDF4", "matplotlib",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions() -> dict:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def machine_info() -> dict:
    import torch

    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }

"""The codec's import chain stays lean (issue 14): encoding and decoding a chunk loads no
command-line, training or evaluation module, and works in a process where matplotlib,
astropy, healpy, netCDF4 and tqdm cannot be imported at all."""

import json
import subprocess
import sys

BLOCKED = ("matplotlib", "astropy", "healpy", "netCDF4", "tqdm")
TOOLS = ("xneuralcodec.cli", "xneuralcodec.training", "xneuralcodec.evaluation")

PROBE = """
import importlib.abc, json, sys
BLOCKED = set(sys.argv[1].split(",")) if sys.argv[1] else set()

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked by the lean-import probe")
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
import zarr
import xneuralcodec
after_import = sorted(sys.modules)
lat = np.linspace(90, -90, 73)[:, None]
chunk = np.stack([250 + 30 * np.cos(np.deg2rad(lat)) * np.cos(np.deg2rad(np.arange(144) * 2.5 * k))
                  for k in (1, 2)]).astype(np.float32)
codec = xneuralcodec.NeuralCodec(quality=2)
v2 = codec.decode(codec.encode(chunk))
store = zarr.storage.MemoryStore()
arr = zarr.create_array(store, shape=chunk.shape, chunks=(1, 73, 144), dtype="float32",
                        serializer=xneuralcodec.NeuralSerializer(quality=2), compressors=None)
arr[:] = chunk
v3 = arr[:]
print(json.dumps({"import": after_import, "coded": sorted(sys.modules),
                  "v2_err": float(np.abs(v2 - chunk).max()), "v3_err": float(np.abs(v3 - chunk).max())}))
"""


def _probe(blocked: tuple[str, ...]) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, ",".join(blocked)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def _loaded(modules, prefixes):
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_encode_and_decode_work_with_the_tool_libraries_missing():
    result = _probe(BLOCKED)
    assert result["v2_err"] < 20 and result["v3_err"] < 20  # real round trips, not empty arrays
    assert _loaded(result["coded"], TOOLS) == []


def test_coding_a_chunk_loads_no_tool_module_even_when_installed():
    result = _probe(())
    # tqdm is left out here: torch.hub imports it by itself when it is installed
    assert _loaded(result["coded"], TOOLS + ("matplotlib", "astropy", "healpy", "netCDF4")) == []


def test_importing_the_package_does_not_load_torch():
    """Configuring codecs, writing metadata or listing a store needs no network."""
    result = _probe(())
    assert _loaded(result["import"], ("torch",)) == []
    assert "xneuralcodec.network.weights" not in result["import"]


CONVENTIONAL_PROBE = """
import json, sys
import numpy as np
import zarr
import xneuralcodec
from xneuralcodec.format import bitstream
chunk = np.load(sys.argv[1])
data = open(sys.argv[2], "rb").read()
config = json.loads(open(sys.argv[3]).read())
codec = xneuralcodec.NeuralCodec.from_config(config)
kinds = sorted({p.kind for p in bitstream.unpack(data).planes})
back = codec.decode(data)
print(json.dumps({"kinds": kinds, "torch": "torch" in sys.modules, "weights": "xneuralcodec.network.weights" in sys.modules,
                  "err": float(np.abs(back - chunk).max())}))
"""


def test_chunks_without_network_planes_decode_without_torch(tmp_path):
    """A chunk made only of SZ3 / SPERR planes (tight targets) decodes without torch or weights."""
    import numpy as np

    from xneuralcodec import NeuralCodec

    lat = np.linspace(90, -90, 73)[:, None]
    chunk = np.stack([250 + 30 * np.cos(np.deg2rad(lat)) * np.cos(np.deg2rad(np.arange(144) * 2.5 * k))
                      for k in (1, 2)]).astype(np.float32)
    codec = NeuralCodec(max_abs_error=0.01)
    np.save(tmp_path / "chunk.npy", chunk)
    (tmp_path / "chunk.bin").write_bytes(codec.encode(chunk))
    (tmp_path / "config.json").write_text(json.dumps(codec.get_config()))
    run = subprocess.run([sys.executable, "-c", CONVENTIONAL_PROBE, str(tmp_path / "chunk.npy"),
                          str(tmp_path / "chunk.bin"), str(tmp_path / "config.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["kinds"] == [4]                       # conventional planes only
    assert not result["torch"] and not result["weights"]
    assert result["err"] <= 0.01

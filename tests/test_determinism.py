"""Decoded values do not depend on thread count or process.

The entropy parameters come from the integer hyper-synthesis, so a chunk encoded with one
torch thread must decode, with two threads in another process, to exactly the array the
encoding process itself decodes, and the other way round (see docs/format.md, "Portability").
Encoded bytes are not promised across processes: the analysis transform is float, and on
this machine the first 0.25 degree chunk of a fresh two-thread process came out different in
4 of 75 and 3 of 150 processes (docs/format.md); either chunk decodes the same everywhere.
"""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from .conftest import DATA, FILES

SCRIPT = """
import sys, hashlib, numpy as np, torch, xarray as xr
torch.set_num_threads(int(sys.argv[1]))
from xneuralcodec import NeuralCodec
codec = NeuralCodec(quality=int(sys.argv[4]))
mode, path = sys.argv[2], sys.argv[3]
if mode == "encode":
    ds = xr.open_dataset(path)
    plane = ds["t2m"].isel(time=-1).values.astype(np.float32)
    data = codec.encode(plane)
    open(sys.argv[5], "wb").write(data)
    np.save(sys.argv[5] + ".npy", codec.decode(data))
    print(hashlib.sha256(data).hexdigest())
else:
    back = codec.decode(open(path, "rb").read())
    np.save(path + ".decoded.npy", back)
    print(hashlib.sha256(back.tobytes()).hexdigest())
"""


def run(*args) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


@pytest.mark.parametrize("key, qualities", [("era5_1deg_t2m", (0, 4)), ("era5_0.25deg", (3,))])
def test_encode_on_one_thread_count_decode_on_the_other_in_another_process(tmp_path, key, qualities):
    # 0.25 degrees too: big maps are where GEMMs and ducc0 actually split work across threads
    src = DATA / FILES[key][0]
    if not src.is_file():
        pytest.skip(f"{src} not available")
    for quality in qualities:
        for encode_threads, decode_threads in ((1, 2), (2, 1)):
            blob = tmp_path / f"chunk{quality}_{encode_threads}.bin"
            run(encode_threads, "encode", src, quality, blob)
            decoded_hash = run(decode_threads, "decode", blob, quality)
            same_process = np.load(str(blob) + ".npy")
            other = np.load(str(blob) + ".decoded.npy")
            np.testing.assert_array_equal(other, same_process)
            assert decoded_hash == hashlib.sha256(same_process.tobytes()).hexdigest()


def test_decode_is_unchanged_under_torch_deterministic_algorithms():
    import torch

    from xneuralcodec import NeuralCodec

    from .conftest import load_plane

    plane, grid = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=grid.to_config(), max_abs_error=0.5)
    data = codec.encode(plane)
    plain = codec.decode(data)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        strict_bytes = codec.encode(plane)
        strict = codec.decode(data)
    finally:
        torch.use_deterministic_algorithms(previous)
    assert strict_bytes == data
    np.testing.assert_array_equal(strict, plain)


@pytest.mark.parametrize("cin, cout, n, stride", [(16, 32, 34, 1), (16, 32, 34, 2), (8, 4, 66, 1), (1, 8, 18, 2)])
def test_convolution_in_passes_of_a_few_faces_gives_the_same_bits(monkeypatch, cin, cout, n, stride):
    """Inference convolutions run a few faces per pass (``layers.PASS_BUDGET``); each face is
    its own GEMM either way, so the output is bit for bit the single pass's."""
    import torch

    from xneuralcodec.network import layers

    torch.manual_seed(cin + cout + n)
    x, weight, bias = torch.randn(12, cin, n, n), torch.randn(cout, cin, 3, 3), torch.randn(cout)
    with torch.no_grad():
        monkeypatch.setattr(layers, "PASS_BUDGET", 2 ** 40)
        whole = layers.conv2d_matmul(x, weight, bias, stride)
        monkeypatch.setattr(layers, "PASS_BUDGET", 1)
        assert layers._rows_per_pass(x, weight, stride, stride == 1 and cout < cin) == torch.get_num_threads()
        torch.testing.assert_close(layers.conv2d_matmul(x, weight, bias, stride), whole, rtol=0, atol=0)
    torch.testing.assert_close(whole, torch.nn.functional.conv2d(x, weight, bias, stride), rtol=1e-5, atol=1e-4)

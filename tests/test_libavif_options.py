"""libaom's options through the bundled libavif (coding/libavif_options.py): the binding writes what
imagecodecs writes where no option is given, tune=ssim writes a different stream that the codec's
decoder reads, bad input is refused, and where the binding is missing the codec codes with psnr."""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from xneuralcodec import NeuralCodec
from xneuralcodec.coding import avif_coder, conventional, libavif_options
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.format import bitstream

from .conftest import load_plane

linux_wheel = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="imagecodecs bundles libavif as a .so on Linux")


def _codes(key="era5_1deg_msl", knob=20.0):
    plane, _ = load_plane(key)
    codes, _, _, quality = avif_coder.codes_of(plane, knob)
    return codes, quality


@linux_wheel
def test_the_bundled_libavif_is_found_and_passes_its_self_check():
    assert libavif_options.available()
    assert avif_coder.tunes() == ("ssim", "psnr")


@linux_wheel
def test_without_options_it_writes_what_imagecodecs_writes_on_a_real_plane():
    """The self-check uses a synthetic image; a real plane, at both speeds the encoder uses, gives the
    same file as imagecodecs' encoder (``avif_file``'s psnr path)."""
    codes, quality = _codes()
    for speed in (avif_coder.PROBE_SPEED, avif_coder.SPEED):
        assert libavif_options.encode(codes, quality, speed) == avif_coder.avif_file(codes, quality, speed, tune="psnr")


@linux_wheel
def test_tune_ssim_writes_another_stream_that_decodes_to_the_codes_shape():
    import imagecodecs

    codes, quality = _codes("era5_1deg_t2m", 0.1)
    plain = avif_coder.avif_file(codes, quality, avif_coder.SPEED, "psnr")
    tuned = avif_coder.avif_file(codes, quality, avif_coder.SPEED, "ssim")
    assert tuned != plain
    errors = []
    for blob in (plain, tuned):
        back = np.asarray(imagecodecs.avif_decode(blob))
        assert back.shape == codes.shape and back.dtype == np.uint16
        errors.append(np.abs(back.astype(np.int64) - codes).mean())
    # the same image, lossy: ~1% of the codes' span off on average (measured 10.1 and 12.5 of 1049)
    assert max(errors) < 0.02 * int(codes.max()), errors
    assert len(tuned) < len(plain) and errors[1] < 1.5 * errors[0], (len(tuned), len(plain), errors)


@linux_wheel
def test_concurrent_encodes_write_what_serial_ones_do():
    """``concurrent_probes`` runs two encodes at once; each call has its own encoder."""
    codes, quality = _codes()
    jobs = [(quality + k, speed) for k in (0, 6) for speed in (avif_coder.PROBE_SPEED, avif_coder.SPEED)]
    serial = [libavif_options.encode(codes, q, s, avif_coder.TUNES["ssim"]) for q, s in jobs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda job: libavif_options.encode(codes, *job, avif_coder.TUNES["ssim"]), jobs))
    assert together == serial


@linux_wheel
def test_bad_input_is_refused_with_a_clear_error():
    codes, quality = _codes()
    with pytest.raises(ValueError, match="codec option"):
        libavif_options.encode(codes, quality, avif_coder.SPEED, (("tune", "no-such-tune"),))
    with pytest.raises(ValueError, match="codec option"):
        libavif_options.encode(codes, quality, avif_coder.SPEED, (("no-such-option", "1"),))
    with pytest.raises(TypeError, match="uint16"):
        libavif_options.encode(codes.astype(np.int32), quality, avif_coder.SPEED)
    with pytest.raises(TypeError, match="2-D"):
        libavif_options.encode(codes[None], quality, avif_coder.SPEED)
    with pytest.raises(ValueError, match="codes below 4096"):
        libavif_options.encode(np.full((40, 40), 4096, np.uint16), quality, avif_coder.SPEED)
    with pytest.raises(ValueError, match="non-empty"):
        libavif_options.encode(np.zeros((0, 40), np.uint16), quality, avif_coder.SPEED)


def test_without_the_binding_the_codec_codes_with_psnr_and_keeps_the_target(monkeypatch, avif_calls):
    """Other platforms' wheels may not ship the library where ``libavif_options`` looks: the encoder
    then searches libaom's default tune alone, through imagecodecs, and still writes an AV1 record."""
    plane, grid = load_plane("era5_1deg_u10")
    plane = plane.astype(np.float32)
    monkeypatch.setattr(libavif_options, "available", lambda: False)
    assert avif_coder.tunes() == ("psnr",)
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.5)
    data = codec.encode(plane)
    assert {call.tune for call in avif_calls} == {"psnr"}
    assert bitstream.unpack(data).planes[0].coder == conventional.AVIF
    assert weighted_errors(plane, codec.decode(data), grid)["mae"] <= 0.5


@linux_wheel
def test_both_tunes_are_searched_and_the_smaller_record_is_kept():
    """ERA5 1 degree u10 at 0.5 m/s: tune=ssim's AV1 record is the smaller; 1 degree msl at 100 Pa
    (2026-03-30T17): psnr's (ssim's tails are heavier there). Searched together, the encoder keeps
    the smaller, as small as either tune searched alone."""
    from xneuralcodec.coding.rate_control import PlaneMAE
    from xneuralcodec.sphere.grid import area_weights

    psnr = (conventional.AVIF_PSNR, conventional.AVIF_PSNR_PROBE)
    winners = {}
    for key, target in (("era5_1deg_u10", 0.5), ("era5_1deg_msl", 100.0)):
        plane, grid = load_plane(key)
        plane = plane.astype(np.float32)

        def record(drop):
            return conventional.best_candidate(plane, np.isfinite(plane), PlaneMAE(plane, area_weights(grid)), None,
                                               target, tuple(c for c in conventional.coders_for("default")
                                                             if c not in drop), grid=grid)

        both, ssim_alone = record(()), record(psnr)
        psnr_alone = record((conventional.AVIF, conventional.AVIF_PROBE))
        assert both.coder == ssim_alone.coder == psnr_alone.coder == conventional.AVIF
        sizes = [r.stored_bytes(plane.dtype) for r in (both, ssim_alone, psnr_alone)]
        assert sizes[0] <= min(sizes[1:]), sizes
        assert sizes[1] != sizes[2], sizes
        winners[key] = "ssim" if sizes[1] < sizes[2] else "psnr"
    assert winners == {"era5_1deg_u10": "ssim", "era5_1deg_msl": "psnr"}, winners

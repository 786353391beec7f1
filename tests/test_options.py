"""The codec options are declared once (``options.CodecOptions``) and every face follows."""

import dataclasses
import inspect

import pytest

import xneuralcodec
from xneuralcodec import NeuralCodec, NeuralSerializer
from xneuralcodec.cli.main import build_parser
from xneuralcodec.options import CodecOptions, flag_options

NAMES = CodecOptions.names()


def test_both_faces_take_store_and_repr_exactly_the_declared_options():
    assert tuple(inspect.signature(NeuralCodec).parameters) == NAMES
    assert tuple(inspect.signature(NeuralSerializer).parameters) == NAMES
    assert tuple(k for k in NeuralCodec().get_config() if k != "id") == NAMES
    assert tuple(NeuralSerializer().to_dict()["configuration"]) == NAMES
    for name in NAMES:
        assert f"``{name}``" in NeuralCodec.__doc__ and f"``{name}``" in NeuralSerializer.__doc__


def test_faces_validate_through_the_same_parsers():
    for bad, error in (({"quality": 9}, ValueError), ({"quality": "3"}, TypeError), ({"nside": 48}, ValueError),
                       ({"device": "tpu"}, ValueError), ({"level": 2000}, ValueError), ({"colour": 1}, TypeError)):
        for face in (NeuralCodec, NeuralSerializer, CodecOptions):
            with pytest.raises(error):
                face(**bad)


def test_positional_options_keep_their_declared_order():
    assert NeuralCodec(2).options.quality == 2
    assert NeuralCodec(2, None, None, None, 64).options.nside == 64


def test_the_command_line_offers_every_flag_option_with_the_codec_message():
    parser = build_parser()
    compress = parser._subparsers._group_actions[0].choices["compress"]
    flags = {s for action in compress._actions for s in action.option_strings}
    for field in flag_options():
        assert f"--{field.name.replace('_', '-')}" in flags
    for field in dataclasses.fields(CodecOptions):
        if field.metadata["flag"] is None:
            assert f"--{field.name.replace('_', '-')}" not in flags


def test_bad_flag_value_is_refused_with_the_option_parser_message(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["compress", "in.nc", "out.zarr", "--quality", "-1"])
    assert exc.value.code == 2
    assert "expected quality in 0..5" in capsys.readouterr().err


def test_quality_range_is_the_models():
    """v1-v4 have 6 rate points; the upper limit comes from the model's registry entry."""
    with pytest.raises(ValueError, match="expected quality in 0..5 for hyperprior-v4"):
        CodecOptions(model="hyperprior-v4", quality=6)
    assert CodecOptions(model="hyperprior-v4", quality=5).quality == 5


def test_encoding_helper_passes_options_through_and_refuses_unknown_ones(era5_1deg):
    enc = xneuralcodec.encoding(era5_1deg[["t2m"]], quality=1, target_mae=0.5)
    options = enc["t2m"]["serializer"].options
    assert options.quality == 1 and options.target_mae == 0.5 and options.variable == "t2m"
    with pytest.raises(TypeError):
        xneuralcodec.encoding(era5_1deg[["t2m"]], qualty=1)

"""The parameter schema: listing, validation, sampling, text parsing and JSON round trips."""

from __future__ import annotations

import json

import pytest

from cfs_core.errors import InputError
from cfs_core.world import (
    SPECS,
    FaceParams,
    parse_attrs,
    sample_params,
    schema,
    schema_json,
)


def test_schema_lists_every_parameter_with_its_facts() -> None:
    rows = json.loads(schema_json())["parameters"]
    assert [r["name"] for r in rows] == list(SPECS) == [r["name"] for r in schema()]
    for row in rows:
        assert row["group"] in ("identity", "attribute", "photo")
        assert row["description"]
        if row["type"] == "choice":
            assert row["default"] in row["choices"]
        else:
            low, high = row["range"]
            assert low <= row["default"] <= high
    groups = {r["name"]: r["group"] for r in rows}
    assert groups["skin_tone"] == groups["eye_spacing"] == "identity"
    assert groups["hair"] == groups["glasses"] == "attribute"
    assert groups["light_angle"] == groups["texture"] == "photo"


def test_the_required_values_exist() -> None:
    assert {"bald", "short", "long", "bob", "curly", "bun", "mohawk"} <= set(SPECS["hair"].choices)
    assert {"black", "brown", "blond", "red", "grey", "white", "blue", "purple"} <= set(SPECS["hair_color"].choices)
    assert SPECS["expression"].choices == ("neutral", "smile", "open_mouth", "frown")
    assert SPECS["glasses"].choices == ("none", "round", "square", "sunglasses")
    assert SPECS["facial_hair"].choices == ("none", "moustache", "goatee", "beard")
    assert SPECS["hat"].choices == ("none", "cap", "beanie")


def test_params_round_trip_through_json() -> None:
    for seed in range(20):
        face = sample_params(seed)
        again = FaceParams.from_dict(json.loads(json.dumps(face.to_dict())))
        assert again == face
        assert hash(again) == hash(face)


def test_from_dict_fills_defaults_and_rejects_unknown_keys() -> None:
    assert FaceParams.from_dict({"hair": "bob"}) == FaceParams(hair="bob")
    with pytest.raises(InputError, match="unknown parameter 'hairstyle'"):
        FaceParams.from_dict({"hairstyle": "bob"})


def test_replace_validates() -> None:
    face = FaceParams()
    assert face.replace(hair_color="red").hair_color == "red"
    with pytest.raises(InputError, match="allowed: none, round, square, sunglasses"):
        face.replace(glasses="monocle")
    with pytest.raises(InputError, match="unknown parameter"):
        face.replace(beard="yes")


def test_sampling_is_seeded_and_respects_fixed_values() -> None:
    assert sample_params(7) == sample_params(7)
    assert len({sample_params(seed) for seed in range(30)}) == 30
    fixed = sample_params(7, hair="long", hair_color="red", eye_size=0.5)
    assert (fixed.hair, fixed.hair_color, fixed.eye_size) == ("long", "red", 0.5)
    assert fixed.face_width == sample_params(7).face_width  # fixing one value leaves the others
    assert sample_params(3, facial_hair="beard").presentation == "masculine"
    for seed in range(100):
        face = sample_params(seed)
        assert face.facial_hair == "none" or face.presentation == "masculine"


def test_identity_parameters_vary_widely_across_people() -> None:
    faces = [sample_params(seed) for seed in range(200)]
    for name, spec in SPECS.items():
        if spec.group == "identity":
            values = [getattr(f, name) for f in faces]
            assert max(values) - min(values) > 0.8 * (spec.high - spec.low), name


def test_parse_attrs_reads_names_values_and_numbers() -> None:
    parsed = parse_attrs(" hair=long, hair_color = red ;expression=open-mouth,eye_size=-0.25 ")
    assert parsed == {"hair": "long", "hair_color": "red", "expression": "open_mouth", "eye_size": -0.25}
    assert parse_attrs("") == {}
    assert sample_params(1, **parsed).expression == "open_mouth"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hair=longg", "bad value 'longg' for hair; allowed: bald, short, long, bob, curly, bun, mohawk"),
        ("hairs=long", "unknown parameter 'hairs'; allowed: face_width, "),
        ("eye_size=3", "eye_size=3 is out of range; allowed: a number in [-1, 1]"),
        ("eye_size=big", "bad value 'big' for eye_size; allowed: a number in [-1, 1]"),
        ("hair", "expected name=value, got 'hair'"),
        ("hair=", "expected name=value, got 'hair='"),
    ],
)
def test_bad_attrs_raise_one_line_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_attrs(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)

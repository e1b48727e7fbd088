"""Captions name what is drawn, in several phrasings, with an optional style prefix."""

from __future__ import annotations

import pytest

from cfs_core.errors import InputError
from cfs_core.world import STYLE_PREFIXES, FaceParams, captions, sample_params


def test_captions_are_deterministic_and_varied() -> None:
    face = sample_params(8)
    assert captions(face, 6, seed=1) == captions(face, 6, seed=1)
    texts = captions(FaceParams(hair="curly", glasses="round", hat="cap", earrings="hoop"), 6, seed=0)
    assert len(texts) == 6 and len(set(texts)) >= 5


def test_the_first_caption_names_the_salient_attributes() -> None:
    face = FaceParams(presentation="feminine", hair="long", hair_color="red", glasses="round", expression="smile",
                      earrings="hoop")
    first = captions(face, 3)[0]
    assert first.startswith("a smiling woman with long red hair and round glasses")
    assert "hoop earrings" in first
    man = FaceParams(presentation="masculine", hair="bald", facial_hair="beard", glasses="sunglasses")
    assert captions(man, 1)[0] == "a bald man with sunglasses and a beard"


@pytest.mark.parametrize("seed", range(12))
def test_every_caption_is_truthful(seed: int) -> None:
    face = sample_params(seed)
    for text in captions(face, 5, seed=seed):
        if face.hair != "bald" and not face.hair_under_hat_hidden:
            assert face.hair_color in text
        for kind in ("round", "square"):
            assert (f"{kind} glasses" in text) <= (face.glasses == kind)
        assert ("sunglasses" in text) <= (face.glasses == "sunglasses")
        for word in ("beard", "goatee", "moustache"):
            assert (word in text) <= (face.facial_hair == word)
        assert ("cap" in text) <= (face.hat == "cap") and ("beanie" in text) <= (face.hat == "beanie")


def test_a_hat_hides_what_it_covers() -> None:
    texts = captions(FaceParams(hair="mohawk", hair_color="pink", hat="beanie", hat_color="blue"), 5)
    assert all("mohawk" not in t and "pink" not in t for t in texts)
    assert any("a blue beanie" in t for t in texts)
    assert any("long black hair" in t for t in captions(FaceParams(hair="long", hair_color="black", hat="cap"), 3))


def test_style_prefixes_and_colourless_sketches() -> None:
    face = FaceParams(hair="bob", hair_color="purple", eye_color="green", background="teal")
    for style, prefixes in STYLE_PREFIXES.items():
        for text in captions(face, 5, style=style, seed=2):
            assert text.startswith(prefixes)
    sketch = " ".join(captions(face, 8, style="sketch", seed=3))
    assert "bob" in sketch and all(c not in sketch for c in ("purple", "green", "teal", "shirt"))
    with pytest.raises(InputError, match="allowed: photo, clipart, sketch"):
        captions(face, style="oil")


def test_nouns_follow_the_presentation() -> None:
    nouns = {p: captions(FaceParams(presentation=p), 1)[0] for p in ("feminine", "masculine", "neutral")}
    assert nouns == {"feminine": "a woman with short brown hair", "masculine": "a man with short brown hair",
                     "neutral": "a person with short brown hair"}

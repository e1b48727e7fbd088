"""Fixtures of the face-world tests: a face with every attribute on."""

from __future__ import annotations

import pytest

from cfs_core.world import FaceParams


@pytest.fixture
def busy_face() -> FaceParams:
    """A face where every attribute is drawn (glasses, beard, earrings, short hair...)."""
    return FaceParams(
        presentation="masculine", hair="short", hair_color="brown", eye_color="blue", eyebrows="arched",
        expression="neutral", glasses="round", facial_hair="beard", hat="none", earrings="stud",
        cloth_color="red", background="teal", skin_tone=0.2,
    )

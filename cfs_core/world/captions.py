"""Captions: several truthful English phrasings of what a face shows.

Captions are built from the attributes only (identity and photo parameters are not named) and
mention only what is drawn: a hat hides short hair, a bun or a mohawk, so those are not named
under a hat, and sketch captions name no colour. The first caption names every salient
attribute; the others vary the phrasing and pick subsets. With ``style`` the captions start
with a style phrase ("a sketch of ...").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cfs_core.errors import InputError
from cfs_core.world.schema import FaceParams

STYLE_PREFIXES: dict[str, tuple[str, ...]] = {
    "photo": ("a photo of", "a portrait photo of", "a rendered photo of"),
    "clipart": ("a clipart of", "a cartoon drawing of", "a flat clipart illustration of"),
    "sketch": ("a sketch of", "a pencil sketch of", "a line drawing of"),
}

_NOUNS = {"feminine": "woman", "masculine": "man", "neutral": "person"}
_MOODS = {"smile": "smiling", "frown": "frowning", "open_mouth": "surprised", "neutral": ""}
_MOOD_FEATURES = {"smile": "a smile", "frown": "a frown", "open_mouth": "an open mouth"}
_HAIR = {
    "short": "short {c} hair",
    "long": "long {c} hair",
    "bob": "a {c} bob",
    "curly": "curly {c} hair",
    "bun": "{c} hair in a bun",
    "mohawk": "a {c} mohawk",
}
_GLASSES = {"round": "round glasses", "square": "square glasses", "sunglasses": "sunglasses"}
_FACIAL_HAIR = {"moustache": "a moustache", "goatee": "a goatee", "beard": "a beard"}


def article(word: str) -> str:
    """``a`` or ``an`` before ``word``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


@dataclass(frozen=True)
class Description:
    """The phrases a caption is assembled from (empty where nothing applies)."""

    noun: str
    bald: bool
    mood: str
    hair: str
    salient: tuple[str, ...]  # "with ...": glasses, facial hair
    details: tuple[str, ...]  # "with ...": eyes, eyebrows
    accessories: tuple[str, ...]  # "wearing ...": hat, earrings
    shirt: str
    background: str


def describe(params: FaceParams, colors: bool = True) -> Description:
    """Collect the truthful phrases for a face; without ``colors`` (sketches) no colour is named."""

    def colored(color: str, thing: str) -> str:
        phrase = f"{color} {thing}" if colors else thing
        return f"{article(phrase)} {phrase}"

    hidden = params.hair_under_hat_hidden
    hair = ""
    if not hidden and params.hair != "bald":
        hair = " ".join(_HAIR[params.hair].format(c=params.hair_color if colors else "").split())
    salient = []
    if params.glasses != "none":
        salient.append(_GLASSES[params.glasses])
    if params.facial_hair != "none":
        salient.append(_FACIAL_HAIR[params.facial_hair])
    accessories = []
    if params.hat != "none":
        accessories.append(colored(params.hat_color, params.hat))
    if params.earrings != "none":
        accessories.append(f"{params.earrings} earrings")
    return Description(
        noun=_NOUNS[params.presentation],
        bald=params.hair == "bald" and not hidden,
        mood=params.expression,
        hair=hair,
        salient=tuple(salient),
        details=((f"{params.eye_color} eyes",) if colors else ()) + (f"{params.eyebrows} eyebrows",),
        accessories=tuple(accessories),
        shirt=colored(params.cloth_color, "shirt") if colors else "",
        background=f"on {colored(params.background, 'background')}" if colors else "",
    )


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _subject(d: Description, with_mood: bool) -> str:
    words = [_MOODS[d.mood] if with_mood else "", "bald" if d.bald else "", d.noun]
    phrase = " ".join(w for w in words if w)
    return f"{article(phrase)} {phrase}"


def _some(items: tuple[str, ...], rng: random.Random, p: float) -> list[str]:
    return [item for item in items if rng.random() < p]


def _caption(d: Description, rng: random.Random, full: bool) -> str:
    """One caption; ``full`` names every salient attribute, otherwise a random subset."""
    mood_as_adjective = d.mood != "neutral" and (full or rng.random() < 0.5)
    if full:
        features, wearing = list(d.salient), list(d.accessories)
    else:
        features = _some(d.salient, rng, 0.8) + _some(d.details, rng, 0.3)
        wearing = _some(d.accessories, rng, 0.7) + _some((d.shirt,) if d.shirt else (), rng, 0.25)
        rng.shuffle(features)
    if d.mood != "neutral" and not mood_as_adjective and rng.random() < 0.7:
        features.append(_MOOD_FEATURES[d.mood])
    with_items = ([d.hair] if d.hair else []) + features
    text = _subject(d, mood_as_adjective)
    if with_items:
        text += " with " + _join(with_items)
    if wearing:
        text += (", wearing " if with_items else " wearing ") + _join(wearing)
    if d.background and not full and rng.random() < 0.3:
        text += " " + d.background
    return text


def captions(params: FaceParams, n: int = 5, style: str | None = None, seed: int = 0) -> list[str]:
    """``n`` distinct-as-possible captions of a face, deterministic given ``seed``.

    ``style`` (``photo``, ``clipart`` or ``sketch``) prefixes each caption with a style phrase;
    None gives bare captions such as "a smiling woman with long red hair and round glasses".
    """
    if style is not None and style not in STYLE_PREFIXES:
        raise InputError(f"unknown style {style!r}; allowed: {', '.join(STYLE_PREFIXES)}")
    rng = random.Random(seed)
    d = describe(params, colors=style != "sketch")
    out: list[str] = []
    seen: set[str] = set()
    for i in range(n):
        text = _caption(d, rng, full=i == 0)
        for _ in range(8):  # a few tries for a phrasing not given yet
            if text not in seen:
                break
            text = _caption(d, rng, full=False)
        seen.add(text)
        out.append(f"{rng.choice(STYLE_PREFIXES[style])} {text}" if style is not None else text)
    return out

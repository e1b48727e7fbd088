"""Captions of the demo CLIP's training and evaluation: the full caption of a face, its visible
attributes, counterfactual captions (one attribute changed) and the hard negatives drawn from them
(:mod:`cfs_core.training.clip` uses them; the world's own phrasings are
:func:`~cfs_core.world.captions`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfs_core.errors import InputError
from cfs_core.training.data import (
    ATTRIBUTE_CHOICES,
    ATTRIBUTES,
    IGNORE,
    attribute_targets,
)
from cfs_core.world import FaceParams, captions
from cfs_core.world.captions import STYLE_PREFIXES, _join, _subject, article, describe

__all__ = ["counterfactual_captions", "full_caption", "hard_negative", "parse_focus", "phrasing", "visible_attributes"]


def full_caption(params: FaceParams, style: str = "photo") -> str:
    """One deterministic caption naming every visible attribute of ``params`` rendered in ``style``.

    Phrasing of :func:`~cfs_core.world.captions` (its first style prefix, the mood as an
    adjective, "with" hair, glasses, facial hair, eyes and eyebrows, ", wearing" hat, earrings and
    shirt, then the background). Two completions make every visible attribute named exactly once:
    when the hair colour shows only in the facial hair it is named there ("a red beard"), and eyes
    behind sunglasses are not named. Sketches name no colour.
    """
    if style not in STYLE_PREFIXES:
        raise InputError(f"unknown style {style!r}; allowed: {', '.join(STYLE_PREFIXES)}")
    colors = style != "sketch"
    d = describe(params, colors=colors)
    salient = list(d.salient)
    if colors and not d.hair and params.facial_hair != "none":  # facial hair is appended last
        phrase = f"{params.hair_color} {params.facial_hair}"
        salient[-1] = f"{article(phrase)} {phrase}"
    details = [p for p in d.details if not (params.glasses == "sunglasses" and p.endswith(" eyes"))]
    with_items = ([d.hair] if d.hair else []) + salient + details
    wearing = list(d.accessories) + ([d.shirt] if d.shirt else [])
    text = _subject(d, with_mood=True)
    if with_items:
        text += " with " + _join(with_items)
    if wearing:
        text += (", wearing " if with_items else " wearing ") + _join(wearing)
    if d.background:
        text += " " + d.background
    return f"{STYLE_PREFIXES[style][0]} {text}"


def visible_attributes(params: FaceParams, style: str = "photo") -> list[str]:
    """The attributes (of :data:`~cfs_core.training.data.ATTRIBUTES`) that ``style`` shows."""
    return [a for a, t in zip(ATTRIBUTES, attribute_targets(params, style)) if int(t) != IGNORE]


def counterfactual_captions(params: FaceParams, style: str, attribute: str) -> dict[str, str]:
    """``{value: full caption with attribute=value, everything else true}`` for every value."""
    if attribute not in ATTRIBUTE_CHOICES:
        raise InputError(f"unknown attribute {attribute!r}; allowed: {', '.join(ATTRIBUTES)}")
    return {v: full_caption(params.replace(**{attribute: v}), style) for v in ATTRIBUTE_CHOICES[attribute]}


def hard_negative(params: FaceParams, style: str, rng: random.Random,
                  focus: Mapping[str, float] | None = None, exclude: Sequence[str] = ()) -> str:
    """A full caption of the face with one random visible attribute changed so that the caption
    differs (eyebrows are always visible and named, so there always is one).

    ``focus`` weights the choice of the attribute (``{name: weight}``, others 1; ``None``: uniform),
    so training can push the attributes a model finds hard; ``exclude`` names attributes not to
    change (the other negatives of the same image), unless nothing else can be changed."""
    return _hard_negative(params, style, rng, focus, exclude)[0]


def _shape(params: FaceParams, style: str) -> tuple[Any, ...]:
    """What decides the random draws of a :func:`~cfs_core.world.captions` phrasing: two faces of
    one shape get, under one seed, the same phrasing with their own words."""
    d = describe(params, colors=style != "sketch")
    return (bool(d.hair), d.bald, d.mood != "neutral", len(d.salient), len(d.details), len(d.accessories),
            bool(d.shirt), bool(d.background))


def _focus_order(attributes: list[str], rng: random.Random, focus: Mapping[str, float]) -> None:
    """Sort ``attributes`` in place into a random order drawn without replacement with the
    ``focus`` weights (others 1): Efraimidis–Spirakis keys ``u^(1/w)``, largest first."""
    keys = {a: rng.random() ** (1.0 / float(focus.get(a, 1.0))) for a in attributes}
    attributes.sort(key=lambda a: -keys[a])


def _hard_negative(params: FaceParams, style: str, rng: random.Random, focus: Mapping[str, float] | None,
                   exclude: Sequence[str], phrase: Callable[[FaceParams], str] | None = None) -> tuple[str, str]:
    """(:func:`hard_negative`'s caption, the attribute it changed). With ``phrase`` (a face → its
    caption in one fixed phrasing) the negative is that phrasing of the changed face, when the
    phrasing names the attribute and keeps its shape (so it differs from the true caption only in
    the changed words); otherwise the full caption's counterfactual."""
    if phrase is not None:
        true = phrase(params)
        for_phrase = random.Random(rng.random())
        shape = _shape(params, style)
        attributes = [a for a in visible_attributes(params, style) if a not in exclude]
        for_phrase.shuffle(attributes)
        if focus is not None:
            _focus_order(attributes, for_phrase, focus)
        for name in attributes:
            values = [v for v in ATTRIBUTE_CHOICES[name] if v != getattr(params, name)]
            for_phrase.shuffle(values)
            for value in values:
                changed = params.replace(**{name: value})
                if _shape(changed, style) == shape and (text := phrase(changed)) != true:
                    return text, name
    true = full_caption(params, style)
    attributes = visible_attributes(params, style)
    if focus is None:
        rng.shuffle(attributes)
    else:
        _focus_order(attributes, rng, focus)
    attributes = [a for a in attributes if a not in exclude] + [a for a in attributes if a in exclude]
    for name in attributes:
        values = [v for v in ATTRIBUTE_CHOICES[name] if v != getattr(params, name)]
        rng.shuffle(values)
        for value in values:
            text = full_caption(params.replace(**{name: value}), style)
            if text != true:
                return text, name
    raise InputError(f"no visible attribute of this face can be changed in its {style} caption")  # pragma: no cover


def parse_focus(text: str) -> dict[str, float]:
    """``"eye_color=4,eyebrows=3"`` → ``{"eye_color": 4.0, "eyebrows": 3.0}`` (weights > 0 of
    known attributes; an empty text is no focus)."""
    focus: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in ATTRIBUTE_CHOICES:
            raise InputError(f"focus {part!r}: expected attribute=weight with an attribute of "
                             f"{', '.join(ATTRIBUTES)}")
        try:
            weight = float(value)
        except ValueError:
            raise InputError(f"focus {part!r}: the weight must be a number") from None
        if not weight > 0 or weight == float("inf"):
            raise InputError(f"focus {part!r}: the weight must be a positive number")
        focus[name] = weight
    return focus


def phrasing(params: FaceParams, style: str, seed: int, pick: int) -> str:
    """Caption ``pick`` of :func:`~cfs_core.world.captions` ``(params, 5, style, seed)``: one fixed
    phrasing, which two faces of one shape fill with their own words."""
    return captions(params, 5, style, seed=seed)[pick]

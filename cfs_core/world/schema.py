"""The parameters of a synthetic face: schema, validation, sampling and text parsing.

Every parameter belongs to one group:

* ``identity``: who the person is (face geometry and skin tone); kept by a good edit.
* ``attribute``: what an edit changes (hair, expression, glasses, ...).
* ``photo``: how the photo style lights and textures the face (ignored by clipart and sketch).

Continuous parameters are floats in a documented range, categorical ones a string from a fixed
list. :class:`FaceParams` holds one full set and validates it; :data:`SPECS` describes each field.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from typing import Any, Literal

from cfs_core.errors import InputError
from cfs_core.world import colors

Group = Literal["identity", "attribute", "photo"]
Value = float | str

GROUPS: tuple[Group, ...] = ("identity", "attribute", "photo")


@dataclass(frozen=True)
class ParamSpec:
    """Description of one parameter: its group, type, allowed values and sampling law."""

    name: str
    group: Group
    description: str
    choices: tuple[str, ...] = ()
    low: float = -1.0
    high: float = 1.0
    weights: tuple[float, ...] = ()
    sample_low: float | None = None
    sample_high: float | None = None

    @property
    def kind(self) -> Literal["float", "choice"]:
        """``choice`` for categorical parameters, ``float`` for continuous ones."""
        return "choice" if self.choices else "float"

    def allowed(self) -> str:
        """The allowed values as one short phrase (for error messages)."""
        if self.choices:
            return ", ".join(self.choices)
        return f"a number in [{self.low:g}, {self.high:g}]"

    def validate(self, value: Any) -> Value:
        """Return ``value`` converted to this parameter's type, or raise :class:`InputError`."""
        if self.choices:
            text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
            if text not in self.choices:
                raise InputError(f"bad value {value!r} for {self.name}; allowed: {self.allowed()}")
            return text
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"bad value {value!r} for {self.name}; allowed: {self.allowed()}") from None
        if not self.low <= number <= self.high:
            raise InputError(f"{self.name}={number:g} is out of range; allowed: {self.allowed()}")
        return number

    def sample(self, rng: random.Random) -> Value:
        """Draw a value: choices by their weights, floats uniformly in the sampling range."""
        if self.choices:
            return rng.choices(self.choices, weights=self.weights or None)[0]
        low = self.low if self.sample_low is None else self.sample_low
        high = self.high if self.sample_high is None else self.sample_high
        return round(rng.uniform(low, high), 4)


def _identity(name: str, description: str, low: float = -1.0, high: float = 1.0) -> ParamSpec:
    return ParamSpec(name, "identity", description, low=low, high=high)


def _choice(name: str, description: str, choices: tuple[str, ...], weights: tuple[float, ...] = ()) -> ParamSpec:
    return ParamSpec(name, "attribute", description, choices=choices, weights=weights)


SPECS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        _identity("face_width", "Head width: -1 narrow, 1 wide."),
        _identity("face_length", "Face length (forehead to chin): -1 short, 1 long."),
        _identity("face_shape", "Chin shape: -1 pointed oval, 1 square."),
        _identity("jaw", "Jaw width at the jaw corners: -1 slim, 1 broad."),
        _identity("eye_spacing", "Distance between the eyes: -1 close, 1 far apart."),
        _identity("eye_size", "Eye size: -1 small, 1 large."),
        _identity("nose_length", "Nose length: -1 short, 1 long."),
        _identity("nose_width", "Nose width at the nostrils: -1 narrow, 1 wide."),
        _identity("mouth_width", "Mouth width: -1 narrow, 1 wide."),
        _identity("ear_size", "Ear size: -1 small, 1 large."),
        _identity("skin_tone", "Skin tone: 0 lightest to 1 darkest (a continuous palette).", 0.0, 1.0),
        _choice(
            "presentation",
            "Gender-like cues: feminine adds lashes, rosy lips and blush; masculine thicker brows.",
            ("neutral", "feminine", "masculine"),
            (0.2, 0.4, 0.4),
        ),
        _choice(
            "hair",
            "Hair style.",
            ("bald", "short", "long", "bob", "curly", "bun", "mohawk"),
            (0.08, 0.24, 0.22, 0.14, 0.14, 0.1, 0.08),
        ),
        _choice("hair_color", "Hair colour (also beard and, darkened, eyebrows).", tuple(colors.HAIR_COLORS),
                (0.18, 0.18, 0.14, 0.1, 0.1, 0.06, 0.06, 0.06, 0.06, 0.06)),
        _choice("eye_color", "Iris colour.", tuple(colors.EYE_COLORS)),
        _choice("eyebrows", "Eyebrow shape.", ("straight", "arched", "angled", "bushy")),
        _choice("expression", "Facial expression.", ("neutral", "smile", "open_mouth", "frown"),
                (0.35, 0.35, 0.15, 0.15)),
        _choice("glasses", "Glasses.", ("none", "round", "square", "sunglasses"), (0.55, 0.17, 0.17, 0.11)),
        _choice("facial_hair", "Facial hair (sampled only for a masculine presentation).",
                ("none", "moustache", "goatee", "beard"), (0.45, 0.15, 0.15, 0.25)),
        _choice("hat", "Headwear.", ("none", "cap", "beanie"), (0.7, 0.15, 0.15)),
        _choice("hat_color", "Colour of the cap or beanie.", tuple(colors.HAT_COLORS)),
        _choice("earrings", "Earrings on both ear lobes.", ("none", "stud", "hoop"), (0.6, 0.2, 0.2)),
        _choice("cloth_color", "Colour of the shirt.", tuple(colors.CLOTH_COLORS)),
        _choice("background", "Background colour.", tuple(colors.BACKGROUND_COLORS)),
        ParamSpec("light_angle", "photo",
                  "Where the light comes from, in degrees: 0 above, -90 image left, 90 image right.",
                  low=-180.0, high=180.0, sample_low=-80.0, sample_high=80.0),
        ParamSpec("texture", "photo", "Strength of the subtle skin, hair and cloth texture.",
                  low=0.0, high=1.0, sample_low=0.2, sample_high=0.8),
    )
}


@dataclass(frozen=True)
class FaceParams:
    """One face: every parameter of :data:`SPECS`, validated on construction.

    Build one with :func:`sample_params`, :meth:`from_dict` or directly (unset fields take their
    defaults); derive variants with :meth:`replace`. Instances are hashable and compare by value.
    """

    face_width: float = 0.0
    face_length: float = 0.0
    face_shape: float = 0.0
    jaw: float = 0.0
    eye_spacing: float = 0.0
    eye_size: float = 0.0
    nose_length: float = 0.0
    nose_width: float = 0.0
    mouth_width: float = 0.0
    ear_size: float = 0.0
    skin_tone: float = 0.3
    presentation: str = "neutral"
    hair: str = "short"
    hair_color: str = "brown"
    eye_color: str = "brown"
    eyebrows: str = "straight"
    expression: str = "neutral"
    glasses: str = "none"
    facial_hair: str = "none"
    hat: str = "none"
    hat_color: str = "red"
    earrings: str = "none"
    cloth_color: str = "blue"
    background: str = "grey"
    light_angle: float = -35.0
    texture: float = 0.5

    def __post_init__(self) -> None:
        for name, spec in SPECS.items():
            object.__setattr__(self, name, spec.validate(getattr(self, name)))

    def replace(self, **changes: Any) -> FaceParams:
        """Return a copy with some parameters changed (validated; unknown names raise InputError)."""
        check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Value]:
        """All parameters as a JSON-ready dict, in schema order."""
        return {name: getattr(self, name) for name in SPECS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceParams:
        """Build from a dict such as :meth:`to_dict` returns; missing keys take their defaults."""
        check_names(data)
        return cls(**data)

    def group(self, group: Group) -> dict[str, Value]:
        """The parameters of one group (``identity``, ``attribute`` or ``photo``)."""
        return {name: getattr(self, name) for name, spec in SPECS.items() if spec.group == group}

    @property
    def hair_under_hat_hidden(self) -> bool:
        """True when a hat hides the hair style entirely (short, bun, mohawk and bald tops)."""
        return self.hat != "none" and self.hair not in ("long", "bob", "curly")


def _defaults() -> dict[str, Value]:
    return {f.name: f.default for f in dataclasses.fields(FaceParams)}  # type: ignore[misc]


if list(_defaults()) != list(SPECS):  # pragma: no cover - guards edits to the two tables
    raise RuntimeError("FaceParams fields and SPECS disagree")


def check_names(data: dict[str, Any]) -> None:
    """Raise :class:`InputError` if ``data`` has a key that is not a parameter name."""
    for key in data:
        if key not in SPECS:
            raise InputError(f"unknown parameter {key!r}; allowed: {', '.join(SPECS)}")


def schema() -> list[dict[str, Any]]:
    """The schema as a list of dicts: name, group, type, choices or range, default, description."""
    defaults = _defaults()
    rows = []
    for name, spec in SPECS.items():
        row: dict[str, Any] = {"name": name, "group": spec.group, "type": spec.kind}
        if spec.choices:
            row["choices"] = list(spec.choices)
        else:
            row["range"] = [spec.low, spec.high]
        row["default"] = defaults[name]
        row["description"] = spec.description
        rows.append(row)
    return rows


def schema_json(indent: int | None = 2) -> str:
    """The schema (see :func:`schema`) as a JSON document."""
    return json.dumps({"version": 1, "parameters": schema()}, indent=indent)


def sample_params(seed: int, **fixed: Any) -> FaceParams:
    """Draw a random face from ``seed``; keyword arguments fix parameters (validated).

    Sampling keeps the attributes coherent: facial hair is drawn only for a masculine presentation,
    and fixing a facial hair other than ``none`` makes the sampled presentation masculine.
    """
    check_names(fixed)
    values: dict[str, Any] = {name: SPECS[name].validate(value) for name, value in fixed.items()}
    rng = random.Random(seed)
    if values.get("facial_hair", "none") != "none":
        values.setdefault("presentation", "masculine")
    for name, spec in SPECS.items():
        drawn = spec.sample(rng)  # always drawn, so fixing one value leaves the others unchanged
        values.setdefault(name, drawn)
    if values["presentation"] != "masculine" and "facial_hair" not in fixed:
        values["facial_hair"] = "none"
    return FaceParams(**values)


def parse_attrs(text: str) -> dict[str, Value]:
    """Parse ``"hair=long,hair_color=red,eye_size=0.5"`` into a validated dict.

    Separators are commas (or semicolons); spaces around names and values are ignored and
    ``open-mouth`` is read as ``open_mouth``. An empty text gives an empty dict.
    """
    result: dict[str, Value] = {}
    for item in text.replace(";", ",").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not value.strip():
            raise InputError(f"expected name=value, got {item.strip()!r}")
        check_names({key: value})
        result[key] = SPECS[key].validate(value.strip())
    return result

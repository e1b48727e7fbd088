"""CFS-Bench cases and their scoring: what ``cfs bench suite`` edits and how an output is read.

A **case** is a source face, a target face and one guidance of one kind:

* the source is face ``i`` of the world's **test split** (:func:`source_params`; no face of any
  training split) drawn as a photo;
* the target is the source with :data:`CHANGES_PER_CASE` attributes set to other values
  (:func:`draw_target`), drawn among :func:`target_pool` with a generator seeded by
  ``(seed, kind, i)``, keeping the world's rules (facial hair only on a masculine presentation)
  and only changes the guidance kind can show (no colours for a sketch) and the evaluator can
  see on the target (no hair style under a hat, no eye colour behind sunglasses);
* the guidance (:func:`case_guidance`) shows the target: its clipart or sketch render, a text
  naming the target attributes (:func:`case_text`, the world's caption phrasing) or, for an
  exemplar, the photo of a *different* identity carrying every attribute of the target.

Scoring: :func:`score_readings` turns the attribute evaluator's readings of an output into a
:class:`Score` (transfer, preservation), and :class:`StyleReader` reads an image's style with
CLIP zero-shot (realism). Running the methods, timing them and writing the outputs live in
:mod:`cfs_registry.bench_suite`; the numbers are defined in ``docs/bench.md``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cfs_core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from cfs_core.guidance import Guidance
    from cfs_core.world import FaceParams
    from cfs_registry.plugins import PluginHost

KINDS: tuple[str, ...] = ("clipart", "sketch", "text", "exemplar")
GUIDE_STYLE = {"clipart": "clipart", "sketch": "sketch", "text": "photo", "exemplar": "photo"}
# eyebrows stay out of the targets: the four shapes differ by a few pixels at 128 px (the demo
# evaluator reads them at 0.86); they still count for preservation.
EXCLUDED_TARGETS = frozenset({"eyebrows"})
CHANGES_PER_CASE = 2
EXEMPLAR_INDEX = 1 << 24  # exemplar identities are test faces from this index on (never a source)
SCORES = ("transfer", "preservation", "identity", "realism", "seconds")
STYLE_NOUNS = ("woman", "man", "person")


def _attributes() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], frozenset[str]]:
    from cfs_core.training.data import ATTRIBUTE_CHOICES, ATTRIBUTES, COLOR_ATTRIBUTES

    return ATTRIBUTES, ATTRIBUTE_CHOICES, COLOR_ATTRIBUTES


def target_pool(kind: str) -> tuple[str, ...]:
    """The attributes a case of ``kind`` may change (schema order)."""
    attributes, _, colors = _attributes()
    return tuple(a for a in attributes if a not in EXCLUDED_TARGETS and not (kind == "sketch" and a in colors))


# ------------------------------------------------------------------------------------ cases
def visible(params: FaceParams, style: str = "photo") -> frozenset[str]:
    """The attributes a render of ``params`` in ``style`` shows (the training data's rule)."""
    from cfs_core.training.data import IGNORE, attribute_targets

    attributes, _, _ = _attributes()
    return frozenset(a for a, t in zip(attributes, attribute_targets(params, style)) if int(t) != IGNORE)


def coherent(params: FaceParams) -> bool:
    """The world's coupling rule: facial hair only on a masculine presentation."""
    return params.facial_hair == "none" or params.presentation == "masculine"


def source_params(index: int, seed: int) -> FaceParams:
    """Source face ``index``: the world's test-split face of data seed ``seed``."""
    from cfs_core.training.data import face_seed
    from cfs_core.world import sample_params

    return sample_params(face_seed("test", index, seed))


def exemplar_params(index: int, seed: int, target: FaceParams) -> FaceParams:
    """Another test face (identity and photo parameters) wearing every attribute of ``target``."""
    from cfs_core.world import FaceParams

    other = source_params(EXEMPLAR_INDEX + index, seed)
    return FaceParams.from_dict({**other.to_dict(), **target.group("attribute")})


def draw_target(source: FaceParams, kind: str, rng: random.Random, k: int = CHANGES_PER_CASE) -> tuple[FaceParams, tuple[str, ...]]:
    """``source`` with ``k`` attributes of :func:`target_pool` changed (and which, in drawing order).

    Attributes are tried in a shuffled order, each with its other values shuffled; a change is
    kept when the face stays coherent and every changed attribute is visible on the target both
    as a photo and in the guidance kind's style.
    """
    _, choices, _ = _attributes()
    order = list(target_pool(kind))
    rng.shuffle(order)
    target, changed = source, ()
    for name in order:
        if len(changed) == k:
            break
        values = [v for v in choices[name] if v != getattr(source, name)]
        rng.shuffle(values)
        for value in values:
            trial = target.replace(**{name: value})
            names = (*changed, name)
            seen = visible(trial, "photo") & visible(trial, GUIDE_STYLE[kind])
            if coherent(trial) and all(n in seen for n in names):
                target, changed = trial, names
                break
    if not changed:  # pragma: no cover - every world face has several changeable attributes
        raise InputError(f"no attribute of this face can be changed for {kind} guidance")
    return target, changed


@dataclass(frozen=True)
class BenchCase:
    """One source × target × guidance kind, with what is scored."""

    case_id: str  # e.g. "text-003"
    kind: str
    index: int  # the source face's index in the test split
    seed: int  # the suite (= data) seed
    source: FaceParams
    target: FaceParams
    changed: tuple[str, ...]  # attributes set to other values, in drawing order
    targets: dict[str, str]  # scored target attributes -> value: changed or revealed, visible on the target
    preserved: tuple[str, ...]  # unchanged attributes visible on source and target
    exemplar: FaceParams | None = None
    text: str | None = None

    @property
    def revealed(self) -> tuple[str, ...]:
        """Target attributes that were not changed but hidden on the source (a removed hat's hair)."""
        return tuple(a for a in self.targets if a not in self.changed)

    def describe(self) -> dict[str, Any]:
        """JSON-able: enough to rebuild the case (seeds) and what is scored."""
        from cfs_core.training.data import face_seed

        out: dict[str, Any] = {
            "id": self.case_id, "kind": self.kind, "source_index": self.index,
            "source_face_seed": face_seed("test", self.index, self.seed),
            "changed": {a: [str(getattr(self.source, a)), str(getattr(self.target, a))] for a in self.changed},
            "targets": dict(self.targets), "revealed": list(self.revealed), "preserved": list(self.preserved),
            "source_attributes": self.source.group("attribute"), "target_attributes": self.target.group("attribute"),
        }
        if self.exemplar is not None:
            out["exemplar_face_seed"] = face_seed("test", EXEMPLAR_INDEX + self.index, self.seed)
        if self.text is not None:
            out["text"] = self.text
        return out


def make_case(kind: str, index: int, seed: int, k: int = CHANGES_PER_CASE) -> BenchCase:
    """Case ``index`` of ``kind`` under suite seed ``seed`` (a pure function of its arguments)."""
    if kind not in KINDS:
        raise InputError(f"unknown guidance kind '{kind}' for the suite (kinds: {', '.join(KINDS)})")
    attributes, _, _ = _attributes()
    source = source_params(index, seed)
    rng = random.Random(f"cfs-bench|{seed}|{kind}|{index}")
    target, changed = draw_target(source, kind, rng, k)
    seen = visible(target, "photo") & visible(target, GUIDE_STYLE[kind])
    before, after = visible(source, "photo"), visible(target, "photo")
    targets = {a: str(getattr(target, a)) for a in attributes if a in seen and (a in changed or a not in before)}
    preserved = tuple(a for a in attributes if a not in changed and a in before and a in after)
    case = BenchCase(f"{kind}-{index:03d}", kind, index, seed, source, target, changed, targets, preserved)
    if kind == "exemplar":
        return _replace(case, exemplar=exemplar_params(index, seed, target))
    if kind == "text":
        return _replace(case, text=case_text(target, targets))
    return case


def _replace(case: BenchCase, **changes: Any) -> BenchCase:
    from dataclasses import replace

    return replace(case, **changes)


def make_cases(kinds: Sequence[str], n: int, seed: int = 0, k: int = CHANGES_PER_CASE) -> list[BenchCase]:
    """``n`` cases per kind: sources ``0..n-1`` of the test split, shared by the kinds."""
    if n < 1:
        raise InputError(f"the suite needs at least one case per kind, got {n}")
    if seed < 0:
        raise InputError(f"the suite seed must be >= 0, got {seed}")
    return [make_case(kind, i, seed, k) for i in range(n) for kind in kinds]


def case_text(target: FaceParams, targets: Mapping[str, str]) -> str:
    """A photo caption naming exactly the target attributes, in the world's caption phrasing:
    "a photo of a smiling person with long red hair, wearing a blue cap, without glasses"."""
    from cfs_core.world.captions import _FACIAL_HAIR, _GLASSES, _HAIR, _MOODS, _NOUNS, STYLE_PREFIXES, _join, article

    t = targets
    adjectives = []
    if "expression" in t and t["expression"] != "neutral":
        adjectives.append(_MOODS[t["expression"]])
    if t.get("hair") == "bald":
        adjectives.append("bald")
    subject = " ".join([*adjectives, _NOUNS[target.presentation] if "presentation" in t else "person"])
    with_items: list[str] = []
    wearing: list[str] = []
    without: list[str] = []
    hair_visible = target.hair != "bald" and not target.hair_under_hat_hidden
    beard_named = False  # the facial hair was named with its colour
    if "hair" in t and t["hair"] != "bald":
        with_items.append(" ".join(_HAIR[t["hair"]].format(c=target.hair_color if "hair_color" in t else "").split()))
    elif "hair_color" in t:
        if hair_visible:
            with_items.append(f"{target.hair_color} hair")
        else:  # only the facial hair shows the colour
            noun = _FACIAL_HAIR[target.facial_hair].split(" ", 1)[1]
            with_items.append(f"{article(target.hair_color)} {target.hair_color} {noun}")
            beard_named = True
    if "eye_color" in t:
        with_items.append(f"{t['eye_color']} eyes")
    if "eyebrows" in t:
        with_items.append(f"{t['eyebrows']} eyebrows")
    if "glasses" in t:
        (without if t["glasses"] == "none" else with_items).append("glasses" if t["glasses"] == "none" else _GLASSES[t["glasses"]])
    if "facial_hair" in t:
        if t["facial_hair"] == "none":
            without.append("facial hair")
        elif not beard_named:
            with_items.append(_FACIAL_HAIR[t["facial_hair"]])
    if t.get("expression") == "neutral":
        with_items.append("a neutral expression")
    if "hat" in t or "hat_color" in t:
        if target.hat == "none":
            without.append("a hat")
        else:
            phrase = f"{target.hat_color} {target.hat}" if "hat_color" in t else target.hat
            wearing.append(f"{article(phrase)} {phrase}")
    if "earrings" in t:
        (without if t["earrings"] == "none" else wearing).append(
            "earrings" if t["earrings"] == "none" else f"{t['earrings']} earrings")
    if "cloth_color" in t:
        wearing.append(f"{article(t['cloth_color'])} {t['cloth_color']} shirt")
    text = f"{STYLE_PREFIXES['photo'][0]} {article(subject)} {subject}"
    if with_items:
        text += " with " + _join(with_items)
    if wearing:
        text += (", wearing " if with_items else " wearing ") + _join(wearing)
    if without:
        text += ", without " + _join(without)
    if "background" in t:
        text += f" on {article(t['background'])} {t['background']} background"
    return text


def render_size(generator_size: int) -> int:
    """World render size for a generator: its size within the renderer's range."""
    from cfs_core.world import MAX_SIZE, MIN_SIZE

    return min(MAX_SIZE, max(MIN_SIZE, generator_size))


def photo(params: FaceParams, size: int) -> np.ndarray:
    """The photo render the demo generator was trained on (the fixed texture seed)."""
    from cfs_core.training.generator import RENDER_SEED
    from cfs_core.world import render

    return render(params, "photo", size, RENDER_SEED)


def case_guidance(case: BenchCase, host: PluginHost, size: int) -> Guidance:
    """The guidance of a case through the registered kind (a sketch gets the kind's clean-up)."""
    from cfs_core.guidance import Guidance, ImageGuidanceKind, image_digest
    from cfs_core.training.generator import RENDER_SEED
    from cfs_core.world import render

    kind = host.guidance_kinds.get(case.kind)()
    if case.text is not None:
        return kind.load(case.text)  # type: ignore[no-any-return]
    params = case.exemplar if case.exemplar is not None else case.target
    image = render(params, GUIDE_STYLE[case.kind], size, RENDER_SEED)
    if isinstance(kind, ImageGuidanceKind):
        image = kind.prepare(image)
    return Guidance(case.kind, f"cfs-bench:{case.case_id}", image=image, digest=image_digest(image))


# ------------------------------------------------------------------------------------ scoring
@dataclass
class Score:
    """The numbers of one output image (``None``: not measurable on this run)."""

    transfer: float | None
    preservation: float | None
    identity: float | None = None
    realism: float | None = None  # 1.0 read as a photo, 0.0 not
    seconds: float | None = None
    style: str | None = None  # what the style reader read
    hits: dict[str, bool] = field(default_factory=dict)  # target attribute -> read as the target value
    kept: dict[str, bool] = field(default_factory=dict)  # preserved attribute -> read as on the source
    readings: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    peak_memory_mb: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in SCORES}
        out.update(style=self.style, hits=self.hits, kept=self.kept, readings=self.readings)
        if self.peak_memory_mb is not None:
            out["peak_memory_mb"] = round(self.peak_memory_mb, 3)
        if self.error is not None:
            out = {"error": self.error, "seconds": self.seconds}
        return out


def score_readings(case: BenchCase, source: Mapping[str, str], output: Mapping[str, str]) -> Score:
    """Transfer and preservation of one output from evaluator readings.

    transfer = share of the case's target attributes read on the output as the target value;
    preservation = share of its preserved attributes read on the output as on the source
    reconstruction. Attributes the evaluator does not read are left out (None when none is left).
    """
    hits = {a: output[a] == v for a, v in case.targets.items() if a in output}
    kept = {a: output[a] == source[a] for a in case.preserved if a in output and a in source}
    return Score(_share(hits), _share(kept), hits=hits, kept=kept,
                 readings={a: output[a] for a in (*case.targets, *case.preserved) if a in output})


def _share(flags: Mapping[str, bool]) -> float | None:
    return sum(flags.values()) / len(flags) if flags else None


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


class StyleReader:
    """Zero-shot style of images with CLIP: photo, clipart or sketch.

    Each style's prompt is the mean unit text embedding of ``"<prefix> a <noun>"`` over the
    world's caption prefixes of that style (``STYLE_PREFIXES``: "a photo of", "a clipart of",
    "a sketch of", …) and the nouns woman, man and person — the phrasing the demo CLIP was
    trained on; an image takes the style of the most similar prompt.
    """

    def __init__(self, clip: Any) -> None:
        import torch

        from cfs_core.nets.protocols import unit
        from cfs_core.world import STYLE_PREFIXES
        from cfs_core.world.captions import article

        self.clip = clip
        self.styles = tuple(STYLE_PREFIXES)
        rows = []
        with torch.no_grad():
            for style in self.styles:
                prompts = [f"{p} {article(n)} {n}" for p in STYLE_PREFIXES[style] for n in STYLE_NOUNS]
                rows.append(unit(unit(clip.encode_text(prompts).float()).mean(0)))
        self.prompts = torch.stack(rows)

    def _pick(self, embeddings: torch.Tensor) -> list[str]:
        from cfs_core.nets.protocols import unit

        sims = unit(embeddings.float()) @ self.prompts.to(embeddings.device).T
        return [self.styles[int(i)] for i in sims.argmax(dim=1)]

    def read(self, images: torch.Tensor) -> list[str]:
        """Styles of generator images ``[B, 3, H, W]`` in [-1, 1]."""
        import torch

        with torch.no_grad():
            return self._pick(self.clip.encode_generated(images))

    def read_uint8(self, images: Sequence[np.ndarray]) -> list[str]:
        """Styles of uint8 RGB images (guidance, renders)."""
        import torch

        import numpy as np

        with torch.no_grad():  # writable copies: renders may be read-only views
            return self._pick(self.clip.encode_images([np.array(image) for image in images]))

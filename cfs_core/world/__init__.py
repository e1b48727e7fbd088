"""The synthetic face world: parametric faces rendered as photo, clipart or sketch, with truth.

A face is a :class:`FaceParams` (identity, attribute and photo parameters, see :data:`SPECS` or
``cfs world schema``). It is built into one resolution-independent scene of labelled primitives
and rasterised in any style at 64 to 1024 pixels, with a per-pixel label map in the 19 classes
of CelebAMask-HQ and captions. Only numpy and Pillow are used (no torch), so importing is cheap.

    >>> from cfs_core.world import sample_params, render, render_labels, captions
    >>> face = sample_params(3, hair="long", hair_color="red")
    >>> image = render(face, style="clipart", size=256)   # (256, 256, 3) uint8
    >>> labels = render_labels(face, size=256)            # (256, 256) uint8 class ids
"""

from __future__ import annotations

from cfs_core.world.build import build_scene
from cfs_core.world.captions import STYLE_PREFIXES, captions
from cfs_core.world.dataset import (
    DatasetOptions,
    DatasetSummary,
    item_seed,
    read_manifest,
    write_dataset,
)
from cfs_core.world.gallery import benchmark, gallery, write_gallery
from cfs_core.world.labels import LABEL_NAMES, colorize_labels, label_palette
from cfs_core.world.scene import Primitive, Scene
from cfs_core.world.schema import (
    GROUPS,
    SPECS,
    FaceParams,
    ParamSpec,
    parse_attrs,
    sample_params,
    schema,
    schema_json,
)
from cfs_core.world.styles import (
    MAX_SIZE,
    MIN_SIZE,
    STYLES,
    parse_styles,
    render,
    render_labels,
    render_scene,
)

__all__ = [
    "GROUPS",
    "LABEL_NAMES",
    "MAX_SIZE",
    "MIN_SIZE",
    "SPECS",
    "STYLES",
    "STYLE_PREFIXES",
    "DatasetOptions",
    "DatasetSummary",
    "FaceParams",
    "ParamSpec",
    "Primitive",
    "Scene",
    "benchmark",
    "build_scene",
    "captions",
    "colorize_labels",
    "gallery",
    "item_seed",
    "label_palette",
    "parse_attrs",
    "parse_styles",
    "read_manifest",
    "render",
    "render_labels",
    "render_scene",
    "sample_params",
    "schema",
    "schema_json",
    "write_dataset",
    "write_gallery",
]

"""The scene: a face as an ordered list of labelled primitives in normalised coordinates.

:func:`~cfs_core.world.build.build_scene` turns :class:`~cfs_core.world.schema.FaceParams` into
a :class:`Scene` in painter's order (back to front), placing the parts with a :class:`Layout`.
The three styles and the label map all rasterise this one scene, so they share the geometry
exactly: the label at a pixel is the label of the topmost primitive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from cfs_core.world.colors import RGB
from cfs_core.world.geometry import Points, arc, spline, symmetric_loop
from cfs_core.world.schema import FaceParams

Kind = Literal["fill", "line", "loop"]


@dataclass(frozen=True, eq=False)
class Primitive:
    """One shape of the scene.

    ``kind`` is ``fill`` (a filled closed polygon), ``line`` (an open polyline) or ``loop`` (a
    closed polyline, not filled). ``label`` is the CelebAMask-HQ class it writes (None: it leaves
    the label below, as a shading overlay does). ``height`` is its elevation for the photo
    shading (None: leaves the elevation below). ``outline`` is the weight of the ink contour that
    clipart and sketch draw around a fill (0: none); a line or loop is drawn by the sketch when it
    is above 0. A ``solid`` fill is inked in the sketch (pupils) instead of left white.
    """

    points: Points
    kind: Kind
    color: RGB
    label: int | None
    alpha: float = 1.0
    width: float = 0.0
    height: float | None = None
    outline: float = 1.0
    solid: bool = False


@dataclass
class Scene:
    """Primitives in painter's order, the background colour and the photo lighting.

    ``framing`` is the camera zoom about the image centre: parts are laid out in face
    coordinates and every point (and line width) is scaled by it as it is added.
    """

    background: RGB
    light_angle: float = -35.0
    texture: float = 0.5
    framing: float = 1.0
    primitives: list[Primitive] = field(default_factory=list)

    def _frame(self, points: Points) -> Points:
        return (points - 0.5) * self.framing + 0.5

    def fill(self, points: Points, color: RGB, label: int | None, height: float | None = None,
             alpha: float = 1.0, outline: float = 1.0, solid: bool = False) -> None:
        """Append a filled polygon."""
        self.primitives.append(
            Primitive(self._frame(points), "fill", color, label, alpha, 0.0, height, outline, solid)
        )

    def line(self, points: Points, color: RGB, width: float, label: int | None = None,
             alpha: float = 1.0, ink: bool = True, closed: bool = False) -> None:
        """Append an open polyline (or a closed one without fill when ``closed``)."""
        kind: Kind = "loop" if closed else "line"
        width *= self.framing
        self.primitives.append(Primitive(self._frame(points), kind, color, label, alpha, width, None, float(ink)))


@dataclass(frozen=True)
class Layout:
    """Where the parts of one face go, derived from its identity parameters.

    ``w`` is the half width of the head; ``eye_y`` the height of the eye line. Every other
    measure is relative to these, so the identity parameters move whole groups of features.
    """

    cx: float
    w: float
    crown_cy: float
    crown_ry: float
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_ry: float
    chin_y: float
    jaw_y: float
    jaw_hw: float
    chin_hw: float
    nose_tip_y: float
    nose_hw: float
    mouth_y: float
    mouth_hw: float
    ear_rx: float
    ear_ry: float
    neck_hw: float
    hairline_y: float

    @classmethod
    def from_params(cls, p: FaceParams) -> Layout:
        """Compute the layout of a face; every identity parameter moves something visible."""
        w = 0.195 * (1.0 + 0.14 * p.face_width)
        eye_y = 0.47
        chin_y = 0.765 + 0.05 * p.face_length
        eye_rx = 0.043 * (1.0 + 0.27 * p.eye_size)
        nose_tip_y = eye_y + 0.095 * (1.0 + 0.34 * p.nose_length)
        return cls(
            cx=0.5,
            w=w,
            crown_cy=0.465,
            crown_ry=0.255,
            eye_y=eye_y,
            eye_dx=w * (0.44 + 0.09 * p.eye_spacing),
            eye_rx=eye_rx,
            eye_ry=eye_rx * 0.58,
            chin_y=chin_y,
            jaw_y=eye_y + 0.62 * (chin_y - eye_y),
            jaw_hw=w * (0.8 + 0.15 * p.jaw),
            chin_hw=w * (0.36 + 0.2 * p.face_shape),
            nose_tip_y=nose_tip_y,
            nose_hw=0.031 * (1.0 + 0.38 * p.nose_width),
            mouth_y=nose_tip_y + 0.43 * (chin_y - nose_tip_y),
            mouth_hw=0.062 * (1.0 + 0.28 * p.mouth_width),
            ear_rx=0.033 * (1.0 + 0.35 * p.ear_size),
            ear_ry=0.056 * (1.0 + 0.35 * p.ear_size),
            neck_hw=w * 0.5,
            hairline_y=eye_y - 0.135,
        )

    @property
    def top_y(self) -> float:
        """The top of the skull."""
        return self.crown_cy - self.crown_ry

    def ear_center(self, side: int) -> tuple[float, float]:
        """Centre of the ear on ``side`` (+1 image right, -1 image left)."""
        return (self.cx + side * (self.w * 0.97 + self.ear_rx * 0.45), self.eye_y + 0.035)

    def eye_center(self, side: int) -> tuple[float, float]:
        """Centre of the eye on ``side`` (+1 image right, -1 image left)."""
        return (self.cx + side * self.eye_dx, self.eye_y)

    def skull_points(self, degrees: list[float], grow: float = 0.0) -> list[tuple[float, float]]:
        """Points of the skull ellipse, grown by ``grow``, at angles (0 = right, -90 = top)."""
        rx, ry = self.w + grow, self.crown_ry + grow
        return [(self.cx + rx * math.cos(math.radians(a)), self.crown_cy + ry * math.sin(math.radians(a)))
                for a in degrees]

    def skull_arc(self, grow: float, side_y: float, n: int = 30) -> Points:
        """The skull outline grown by ``grow``, from the left side at height ``side_y`` over the top
        to the right side (hair caps, hats)."""
        ry = self.crown_ry + grow
        lift = math.asin(min(1.0, max(-1.0, (side_y - self.crown_cy) / ry)))
        return arc(self.cx, self.crown_cy, self.w + grow, ry, math.pi - lift, 2.0 * math.pi + lift, n)

    def head_outline(self) -> Points:
        """The closed outline of the head (skull and face), clockwise from the top."""
        right = self.skull_points([-62.0, -32.0, -8.0]) + [
            (self.cx + self.w * 0.99, self.eye_y + 0.05),
            (self.cx + self.jaw_hw, self.jaw_y),
            (self.cx + self.chin_hw, self.chin_y - 0.012),
        ]
        return spline(symmetric_loop(right, self.cx, self.top_y, self.chin_y), closed=True, samples=6)


def side_label(side: int, left: int, right: int) -> int:
    """The label of a left/right pair for ``side``: image right (+1) is the subject's left."""
    return left if side > 0 else right

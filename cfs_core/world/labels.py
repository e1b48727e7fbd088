"""Per-pixel labels in the 19-class scheme of CelebAMask-HQ, and their visualisation.

The class order is that of the CelebAMask-HQ face parser cfs loads. ``l_`` means the subject's
left, which is the image's right (the face looks at the viewer), as in CelebAMask-HQ. Class 16
(``neck_l``, necklace) exists for compatibility and is never drawn by the world.
"""

from __future__ import annotations

import numpy as np

LABEL_NAMES: tuple[str, ...] = (
    "background",
    "skin",
    "nose",
    "eye_g",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "l_ear",
    "r_ear",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "hat",
    "ear_r",
    "neck_l",
    "neck",
    "cloth",
)

BACKGROUND, SKIN, NOSE, EYE_G, L_EYE, R_EYE, L_BROW, R_BROW, L_EAR, R_EAR = range(10)
MOUTH, U_LIP, L_LIP, HAIR, HAT, EAR_R, NECK_L, NECK, CLOTH = range(10, 19)

_PALETTE = np.array(
    [
        (0, 0, 0),
        (204, 0, 0),
        (76, 153, 0),
        (204, 204, 0),
        (51, 51, 255),
        (204, 0, 204),
        (0, 255, 255),
        (255, 204, 204),
        (102, 51, 0),
        (255, 0, 0),
        (102, 204, 0),
        (255, 255, 0),
        (0, 0, 153),
        (0, 0, 204),
        (255, 51, 153),
        (0, 204, 204),
        (0, 51, 0),
        (255, 153, 51),
        (0, 204, 0),
    ],
    dtype=np.uint8,
)


def label_palette() -> np.ndarray:
    """The (19, 3) uint8 colour of each class, the palette commonly used for CelebAMask-HQ."""
    return _PALETTE.copy()


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """Map an (H, W) label map to an (H, W, 3) uint8 image with :func:`label_palette`."""
    return _PALETTE[np.asarray(labels, dtype=np.intp)]

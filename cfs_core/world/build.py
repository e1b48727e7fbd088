"""Compose a face: the painter's order of the parts of :mod:`cfs_core.world.face`,
:mod:`cfs_core.world.hair` and :mod:`cfs_core.world.accessories`."""

from __future__ import annotations

from cfs_core.world import accessories, colors, face, hair
from cfs_core.world.scene import Layout, Scene
from cfs_core.world.schema import FaceParams

FRAMING = 1.1  # the parts are laid out for a head of half width ~0.19; the camera zooms in a bit


def build_scene(params: FaceParams) -> Scene:
    """Build the scene of a face, back to front: the label at a pixel is its topmost primitive's."""
    layout = Layout.from_params(params)
    scene = Scene(colors.BACKGROUND_COLORS[params.background], params.light_angle, params.texture, FRAMING)
    hair.add_back(scene, layout, params)
    face.add_body(scene, layout, params)
    face.add_ears(scene, layout, params)
    face.add_head(scene, layout, params)
    accessories.add_earrings(scene, layout, params)
    face.add_nose(scene, layout, params)
    accessories.add_lenses(scene, layout, params, clear=True)
    face.add_eyes(scene, layout, params)
    hair.add_beard(scene, layout, params)
    face.add_mouth(scene, layout, params)
    hair.add_moustache(scene, layout, params)
    face.add_brows(scene, layout, params)
    hair.add_front(scene, layout, params)
    accessories.add_lenses(scene, layout, params, clear=False)
    accessories.add_frames(scene, layout, params)
    accessories.add_hat(scene, layout, params)
    return scene

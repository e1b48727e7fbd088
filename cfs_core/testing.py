"""Conformance kit for plugin authors: test mixins your plugin's tests inherit (needs pytest).

Subclass a mixin in your own test module, set the class attributes and implement the
``get_dummy_*`` methods; pytest then runs the generic tests against your plugin::

    from cfs_core.testing import EditingMethodTests
    import cfs_my_method

    class TestMyMethod(EditingMethodTests):
        plugin = cfs_my_method                  # the module with the @hookimpl functions
        method_cls = cfs_my_method.MyMethod

        def get_dummy_request(self, ctx):
            return self.request(ctx, kind="text", source="a smiling face", options={"steps": 2})

What the kit checks — for methods: the method registers through its hook; ``Options`` rejects
unknown keys; guidance kinds outside ``accepts`` are refused; an edit returns images and latents
of the declared shape; the same seed gives the same output; generator weights are untouched and
get no gradients; the source latents are not mutated; progress events are emitted. For guidance
kinds and losses: registration, valid and invalid inputs, and (losses) declared resources.

Everything runs on a tiny random-weight generator (:func:`tiny_generator`, 16×16 px) in well
under a second per test on a CPU. :class:`FakeClip`, :class:`FakeIdentity` and
:class:`FakeParser` stand in for the heavy resources (``get_dummy_context`` can provide them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest
import torch

from cfs_core import hookspecs
from cfs_core.errors import InputError
from cfs_core.fakes import FakeClip, FakeIdentity, FakeParser
from cfs_core.guidance import Guidance, GuidanceKind
from cfs_core.losses import Loss, LossInputs
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, ProgressEvent
from cfs_core.registration import Table, collect
from cfs_core.resources import Resources
from cfs_core.stylegan2 import Generator, GeneratorConfig

BUILTIN_KINDS = ("text", "clipart", "sketch", "exemplar")

__all__ = [
    "EditingMethodTests", "FakeClip", "FakeIdentity", "FakeParser", "GuidanceKindTests", "LossTests",
    "fake_context", "first_party_losses", "registered_table", "source_latents", "tiny_generator",
]


def tiny_generator(seed: int = 0, size: int = 16, style_dim: int = 16) -> Generator:
    """A seeded random-weight StyleGAN2 small enough for unit tests (eval, no gradients)."""
    channels = {res: max(8, 32 // (2 ** i)) for i, res in enumerate(2 ** k for k in range(2, size.bit_length()))}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = Generator(GeneratorConfig(size=size, style_dim=style_dim, n_mlp=2, channels=channels))
    return gen.eval().requires_grad_(False)


def source_latents(gen: Generator, batch: int = 1, seed: int = 0, truncation: float = 0.7) -> torch.Tensor:
    """Seeded source W+ codes ``[batch, L, D]`` of ``gen``."""
    return gen.sample(batch, seed=seed, truncation=truncation)[1]


def registered_table(plugin: object, hook: str, *more: object) -> Table[Any]:
    """Register ``plugin`` (and ``more`` plugins) in a fresh plugin manager and run one hook."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for i, each in enumerate((plugin, *more)):
        pm.register(each, name="plugin-under-test" if i == 0 else f"plugin-{i}")
    pm.check_pending()
    return collect(pm, hook)


def first_party_losses() -> Table[Any]:
    """The loss table of cfs' own loss plugins (for method tests: ``ctx.losses``)."""
    import importlib

    plugins = [importlib.import_module(f"cfs_plugins.{name}") for name in ("clip_losses", "face_losses", "latent_losses")]
    return registered_table(plugins[0], "register_losses", *plugins[1:])


def fake_context(seed: int = 0, cache_dir: Path | None = None, **generator_kwargs: Any) -> EditContext:
    """A CPU context with :func:`tiny_generator`, the three fake resources and the loss table."""
    resources = Resources({"clip": FakeClip, "identity": FakeIdentity, "parser": FakeParser})
    return EditContext(generator=tiny_generator(**generator_kwargs), device=torch.device("cpu"), seed=seed,
                       resources=resources, cache_dir=cache_dir, losses=first_party_losses())


class EditingMethodTests:
    """Generic tests of an editing method plugin."""

    plugin: ClassVar[object]
    method_cls: ClassVar[type[EditingMethod]]

    # ------------------------------------------------------------- for the plugin author
    def get_dummy_context(self) -> EditContext:
        """A tiny generator on CPU, seed 0, no resources; override to provide fakes (clip…)."""
        return EditContext(generator=tiny_generator(), device=torch.device("cpu"), seed=0, resources=Resources())

    def get_dummy_request(self, ctx: EditContext) -> EditRequest:
        """An edit request that runs in well under a second; see :meth:`request`."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement get_dummy_request(ctx), e.g. "
            "return self.request(ctx, kind='text', source='a face', options={'steps': 2})"
        )

    def request(self, ctx: EditContext, kind: str, source: str, options: dict[str, Any] | None = None,
                batch: int = 1, kind_cls: type[GuidanceKind] | None = None) -> EditRequest:
        """Build a request: guidance of ``kind`` from ``source``, seeded source latents.

        Without ``kind_cls`` the guidance is a plain text value; pass the kind's class (e.g. one
        your plugin registers) to build it with ``kind_cls().load(source)``, ``meta`` included.
        """
        from cfs_core.guidance import text_digest

        if kind_cls is not None:
            guidance = kind_cls().load(source)
            assert guidance.kind == kind, f"{kind_cls.__name__} loads '{guidance.kind}' guidance, not '{kind}'"
        else:
            guidance = Guidance(kind, source, text=source, digest=text_digest(source))
        return EditRequest(source_latents(ctx.generator, batch), guidance, self.method_cls.parse_options(options or {}))

    # ------------------------------------------------------------- helpers
    def run_edit(self) -> tuple[EditContext, EditRequest, EditResult, list[ProgressEvent]]:
        events: list[ProgressEvent] = []
        ctx = self.get_dummy_context()
        ctx.progress = events.append
        request = self.get_dummy_request(ctx)
        return ctx, request, self.method_cls().edit(ctx, request), events

    # ------------------------------------------------------------- the tests
    def test_registers_through_its_hook(self) -> None:
        table = registered_table(self.plugin, "register_methods")
        assert table.get(self.method_cls.method_id) is self.method_cls

    def test_describe_is_json(self) -> None:
        json.dumps(self.method_cls.describe())

    def test_rejects_unknown_options(self) -> None:
        with pytest.raises(InputError, match="unknown option 'definitely_not_an_option'"):
            self.method_cls.parse_options({"definitely_not_an_option": "1"})

    def test_rejects_foreign_guidance(self) -> None:
        foreign = next((k for k in (*BUILTIN_KINDS, "no-such-kind") if k not in self.method_cls.accepts))
        with pytest.raises(InputError, match="accepts only"):
            self.method_cls.check_guidance(foreign)
        for kind in self.method_cls.accepts:
            self.method_cls.check_guidance(kind)

    def test_returns_declared_shapes(self) -> None:
        ctx, request, result, _ = self.run_edit()
        gen, batch = ctx.generator, request.latents.shape[0]
        assert result.latent_space == self.method_cls.latent_space
        assert tuple(result.images.shape) == (batch, 3, gen.size, gen.size)
        assert torch.isfinite(result.images).all()
        if result.latent_space == "s":
            assert [tuple(s.shape) for s in result.latents] == [(batch, c) for c in gen.stylespace_dims]
        elif result.latent_space == "w+":
            assert tuple(result.latents.shape) == tuple(request.latents.shape)
        else:
            assert tuple(result.latents.shape) == (batch, gen.style_dim)
        json.dumps(result.info)

    def test_same_seed_same_output(self) -> None:
        first = self.run_edit()[2]
        second = self.run_edit()[2]
        assert torch.equal(first.images, second.images)

    def test_does_not_touch_generator_or_inputs(self) -> None:
        ctx = self.get_dummy_context()
        before = {k: v.clone() for k, v in ctx.generator.state_dict().items()}
        request = self.get_dummy_request(ctx)
        latents = request.latents.clone()
        self.method_cls().edit(ctx, request)
        after = ctx.generator.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), "the edit changed generator weights"
        assert all(p.grad is None for p in ctx.generator.parameters()), "generator parameters received gradients"
        assert torch.equal(request.latents, latents), "the edit mutated the source latents"

    def test_emits_progress_events(self) -> None:
        events = self.run_edit()[3]
        assert events, "the method reported no progress (call ctx.report)"
        assert all(isinstance(e, ProgressEvent) and e.step >= 0 for e in events)


class GuidanceKindTests:
    """Generic tests of a guidance-kind plugin."""

    plugin: ClassVar[object]
    kind_cls: ClassVar[type[GuidanceKind]]

    def get_valid_source(self, tmp_path: Path) -> str:
        raise NotImplementedError(f"{type(self).__name__} must return a valid raw input (text or a file it writes)")

    def get_invalid_sources(self, tmp_path: Path) -> list[str]:
        """Raw inputs that must be refused with a one-line InputError."""
        return []

    def test_registers_through_its_hook(self) -> None:
        table = registered_table(self.plugin, "register_guidance_kinds")
        assert table.get(self.kind_cls.kind_id) is self.kind_cls

    def test_loads_valid_input(self, tmp_path: Path) -> None:
        source = self.get_valid_source(tmp_path)
        guidance = self.kind_cls().load(source)
        assert guidance.kind == self.kind_cls.kind_id
        assert len(guidance.digest) == 64
        if self.kind_cls.modality == "image":
            assert guidance.image is not None and guidance.image.dtype.name == "uint8"
            assert guidance.image.ndim == 3 and guidance.image.shape[2] == 3
        else:
            assert guidance.text
        assert self.kind_cls().load(source).digest == guidance.digest
        json.dumps(guidance.describe())

    def test_refuses_invalid_input(self, tmp_path: Path) -> None:
        for source in self.get_invalid_sources(tmp_path):
            with pytest.raises(InputError) as info:
                self.kind_cls().load(source)
            assert "\n" not in str(info.value)


class LossTests:
    """Generic tests of a loss plugin."""

    plugin: ClassVar[object]
    loss_cls: ClassVar[type[Loss]]

    def get_resources(self) -> Resources:
        """Resources providing (fakes of) everything the loss ``requires``."""
        return Resources()

    def get_inputs(self) -> LossInputs:
        raise NotImplementedError(f"{type(self).__name__} must return LossInputs for a small case")

    def test_registers_through_its_hook(self) -> None:
        table = registered_table(self.plugin, "register_losses")
        assert table.get(self.loss_cls.loss_id) is self.loss_cls

    def test_returns_a_finite_scalar(self) -> None:
        value = self.loss_cls(self.get_resources())(self.get_inputs())
        assert value.ndim == 0 and torch.isfinite(value)

    def test_uses_only_declared_resources(self) -> None:
        full = self.get_resources()
        limited = Resources({name: (lambda n=name: full.get(n)) for name in self.loss_cls.requires})
        self.loss_cls(limited)(self.get_inputs())
        assert set(limited.built()) <= set(self.loss_cls.requires)

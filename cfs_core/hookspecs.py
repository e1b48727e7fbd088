"""Hook specifications of cfs: the contract between the host and every plugin.

A plugin is a module (or object) with functions decorated by :data:`cfs_core.hookimpl` whose
names are the hooks below. It is found through the ``cfs`` entry-point group::

    [project.entry-points.cfs]
    my_method = "cfs_my_method"          # the module with the @hookimpl functions

All hooks here are *registration hooks* (as in simonw/llm): the host calls each one **once**,
when the corresponding table is first needed, passing a ``register`` callable; the hook calls
``register`` for every object it contributes and returns nothing. The host validates each
registration (unique id, required class attributes, options model) and raises
:class:`cfs_core.registration.RegistrationError` naming the plugin when something is wrong.
Registering an id that another plugin already registered is an error naming both plugins,
unless the call passes ``replace=True``.

Keep a plugin module's top level cheap (no torch import): import heavy modules inside the hook
function, so that ``cfs --help`` and the listings stay fast.

Hook names are checked: a ``@hookimpl`` whose name is not listed here is rejected at load time
(``PluginManager.check_pending``), so a misspelling cannot pass silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import typer

PROJECT = "cfs"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The ``register`` callable passed to registration hooks."""

    def __call__(self, obj: Any, *, replace: bool = False) -> None: ...


# -------------------------------------------------------------------------------------------
# Guidance kinds
# -------------------------------------------------------------------------------------------


@hookspec
def register_guidance_kinds(register: Register) -> None:
    """Register guidance kinds: what a user may guide an edit with.

    Called once, when the guidance table is first needed.

    :param register: call ``register(KindClass)`` for each kind. ``KindClass`` subclasses
        :class:`cfs_core.guidance.GuidanceKind` and sets ``kind_id`` (snake_case, unique),
        ``description`` and ``modality`` (``"text"`` or ``"image"``). Its ``load(source)``
        turns raw user input (a text, or a path to an image) into a validated
        :class:`cfs_core.guidance.Guidance`, raising :class:`cfs_core.errors.InputError` with a
        one-line message for bad input.

    Built-in kinds: ``text``, ``clipart``, ``sketch``, ``exemplar``.
    """


# -------------------------------------------------------------------------------------------
# Editing methods
# -------------------------------------------------------------------------------------------


@hookspec
def register_methods(register: Register) -> None:
    """Register editing methods.

    Called once, when the method table is first needed.

    :param register: call ``register(MethodClass)`` for each method. ``MethodClass``
        subclasses :class:`cfs_core.methods.EditingMethod` and sets ``method_id``,
        ``description``, ``accepts`` (a frozenset of guidance ``kind_id``s), ``latent_space``
        (``"w"``, ``"w+"`` or ``"s"``), ``Options`` (a :class:`cfs_core.methods.MethodOptions`
        subclass; unknown keys are rejected), ``default_losses`` (loss id → weight) and
        ``requires`` (resource names such as ``"clip"``). Its ``edit(ctx, request)`` returns a
        :class:`cfs_core.methods.EditResult` and reports progress through ``ctx.progress``.

    The host refuses a guidance kind outside ``accepts`` before anything heavy is loaded.
    """


# -------------------------------------------------------------------------------------------
# Losses
# -------------------------------------------------------------------------------------------


@hookspec
def register_losses(register: Register) -> None:
    """Register losses that methods compose by name × weight.

    Called once, when the loss table is first needed.

    :param register: call ``register(LossClass)`` for each loss. ``LossClass`` subclasses
        :class:`cfs_core.losses.Loss` and sets ``loss_id``, ``description``, ``formula`` and
        ``requires`` (resource names resolved lazily through ``ctx.resources``, so a net that
        no chosen loss needs is never built). Calling an instance returns a scalar tensor.
    """


# -------------------------------------------------------------------------------------------
# Generators / model sources
# -------------------------------------------------------------------------------------------


@hookspec
def register_generators(register: Register) -> None:
    """Register generator sources: code that turns a model file into a generator.

    Called once, when a generator is first resolved.

    :param register: call ``register(SourceClass)`` for each source. ``SourceClass``
        subclasses :class:`cfs_core.sources.GeneratorSource` and sets ``source_id`` and
        ``description``; ``can_load(path)`` says whether it reads a file (cheaply, without
        loading weights) and ``load(path, device)`` returns a ready generator. The first source
        (in registration order) whose ``can_load`` is true loads a file.

    Built-in source: ``stylegan2`` (rosinality ``.pt`` layouts and cfs ``.safetensors``).
    """


# -------------------------------------------------------------------------------------------
# Metrics
# -------------------------------------------------------------------------------------------


@hookspec
def register_metrics(register: Register) -> None:
    """Register metrics that comparisons and benchmarks report.

    Called once, when the metric table is first needed.

    :param register: call ``register(MetricClass)`` for each metric. ``MetricClass``
        subclasses :class:`cfs_core.metrics.Metric` and sets ``metric_id``, ``description``,
        ``higher_is_better`` and ``requires``; an instance is built with the run's
        :class:`cfs_core.resources.Resources` and ``compute(sample)`` returns one float per
        edited image.
    """


# -------------------------------------------------------------------------------------------
# CLI commands
# -------------------------------------------------------------------------------------------


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add commands to the ``cfs`` command line.

    Called once, while the ``cfs`` application is built (so on every ``cfs`` run: keep it
    cheap, import heavy modules inside the command functions).

    :param app: the root Typer app. Add a group with ``app.add_typer(sub_app, name="mine")``
        or a command with ``@app.command()``. Commands must be Typer commands; a name that is
        already taken is an error naming the plugin.
    """


def hook_names() -> list[str]:
    """Names of every hook specified here (for listings and docs checks)."""
    return sorted(
        name for name, value in globals().items()
        if callable(value) and hasattr(value, f"{PROJECT}_spec")
    )

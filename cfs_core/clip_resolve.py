"""Resolving a CLIP source offline: ``(open_clip name, config, preprocess overrides, weights file)``.

Part of the CLIP adapter (:mod:`cfs_core.clip`, whose docstring lists the sources): custom
configs registered under content-hashed names, ``local-dir:``/``hf-hub:`` folders, and open_clip
pretrained tags resolved from the Hugging Face cache or open_clip's URL cache — never a download.
Spec: ``styleclip_stylegan2.md`` §2, §9.3 (the QuickGELU pairing check).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfs_core.checkpoints import check_model_path, first_line
from cfs_core.errors import ModelLoadError
from cfs_core.fileio import sha256_file

__all__ = ["register_config", "resolve_pretrained_file", "resolve_source"]

HF_WEIGHTS, HF_SAFE_WEIGHTS = "open_clip_pytorch_model.bin", "open_clip_model.safetensors"


def register_config(config: Mapping[str, Any], stem: str) -> str:
    """Put a custom config in open_clip's table under a content-hashed name; return the name."""
    from open_clip import factory

    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ModelLoadError(f"CLIP config '{stem}' lacks {', '.join(missing)} (need embed_dim, vision_cfg, text_cfg)")
    text = json.dumps(config, sort_keys=True)
    name = f"cfs-{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    factory._MODEL_CONFIGS[name] = json.loads(text)
    return name


def _split_config(obj: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_cfg, preprocess_cfg)`` of a bare open_clip config or an ``open_clip_config.json``."""
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{where}: a CLIP config must be a JSON object")
    if "model_cfg" in obj:
        return dict(obj["model_cfg"]), dict(obj.get("preprocess_cfg") or {})
    return dict(obj), {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(check_model_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable JSON config ({first_line(exc)})") from None


def _safe_alternatives(filename: str) -> list[str]:
    """open_clip's preference: a safetensors twin first (``pretrained._get_safe_alternatives``)."""
    if filename == HF_WEIGHTS:
        return [HF_SAFE_WEIGHTS, filename]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def _hf_cached(repo: str, names: Sequence[str], cache_dir: str | os.PathLike[str] | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache  # a dependency of open_clip

    for name in names:
        hit = try_to_load_from_cache(repo, name, cache_dir=None if cache_dir is None else Path(cache_dir))  # no network
        if isinstance(hit, str):
            return Path(hit)
    return None


def _hf_cache_dir(cache_dir: str | os.PathLike[str] | None) -> str:
    from huggingface_hub import constants

    return str(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)


def _tag_cfg(model_name: str, tag: str) -> dict[str, Any]:
    """open_clip's pretrained config of ``(model_name, tag)``, or a one-line error listing the tags."""
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    cfg = get_pretrained_cfg(model_name, tag)
    if not cfg:
        tags = ", ".join(list_pretrained_tags_by_model(model_name)) or "none"
        raise ModelLoadError(f"'{tag}' is neither a pretrained tag of {model_name} (tags: {tags}) nor an existing file")
    return dict(cfg)


def resolve_pretrained_file(model_name: str, tag: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local file of open_clip's pretrained ``(model_name, tag)``, found without any network.

    Looks where open_clip would have downloaded it: the Hugging Face cache (``cache_dir`` or
    ``HF_HUB_CACHE``; safetensors twin first), then open_clip's URL cache (``cache_dir`` or
    ``~/.cache/clip``, SHA-256 checked for OpenAI/mlfoundations URLs). Otherwise raises a one-line
    :class:`ModelLoadError` naming the file to fetch and where to put it.
    """
    cfg = _tag_cfg(model_name, tag)
    if cfg.get("file"):
        return check_model_path(cfg["file"])
    hints: list[str] = []
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        names = _safe_alternatives(filename or HF_WEIGHTS)
        found = _hf_cached(repo, names, cache_dir)
        if found is not None:
            return found
        hints.append(f"fetch {names[0]} from https://huggingface.co/{repo} into the Hugging Face cache "
                     f"{_hf_cache_dir(cache_dir)} (`hf download {repo} {names[0]}`)")
    if cfg.get("url"):
        url = str(cfg["url"])
        target = Path(cache_dir or "~/.cache/clip").expanduser() / os.path.basename(url)
        if target.is_file():
            expected = url.split("/")[-2] if "openaipublic" in url else \
                os.path.splitext(target.name)[0].split("-")[-1] if "mlfoundations" in url else ""
            if expected and not sha256_file(target).startswith(expected):
                raise ModelLoadError(f"{target}: SHA-256 does not match {url}; delete it and fetch it again")
            return target
        hints.append(f"save {url} as {target}")
    raise ModelLoadError(f"CLIP weights {model_name}/{tag} are not on this machine and cfs never downloads while "
                         f"editing: {'; or '.join(hints)}; or pass pretrained=<path of a local weights file>")


def _check_activation(name: str, config: Mapping[str, Any], tag: str, allow: bool) -> None:
    """Refuse (or warn about) a tag trained with another activation than the config builds (§9.3)."""
    from open_clip import factory

    wanted = bool(_tag_cfg(name, tag).get("quick_gelu", False))
    built = bool(config.get("quick_gelu", False))
    if wanted == built:
        return
    act = {True: "QuickGELU", False: "nn.GELU"}
    hint = f"; use '{name}-quickgelu'" if wanted and f"{name}-quickgelu" in factory._MODEL_CONFIGS else ""
    message = (f"{name} + pretrained '{tag}': the weights were trained with {act[wanted]} but {name} builds "
               f"{act[built]} (open_clip only warns and the embeddings are silently off){hint}")
    if not allow:
        raise ModelLoadError(message + ", or pass allow_gelu_mismatch=True")
    warnings.warn(message, UserWarning, stacklevel=3)


def resolve_source(model: str | os.PathLike[str] | Mapping[str, Any], pretrained: str | os.PathLike[str] | None,
             cache_dir: str | os.PathLike[str] | None, allow_gelu_mismatch: bool,
             ) -> tuple[str, dict[str, Any], dict[str, Any], Path | None]:
    """``(open_clip name, model config, preprocess overrides, weights file or None)``."""
    from open_clip import factory

    weights = Path(pretrained).expanduser() if pretrained is not None else None
    text = os.fspath(model) if isinstance(model, (str, os.PathLike)) else ""
    if isinstance(model, Mapping) or text.endswith(".json") or isinstance(model, os.PathLike):
        where = "config" if isinstance(model, Mapping) else text
        raw = model if isinstance(model, Mapping) else _read_json(Path(text))
        config, preprocess = _split_config(raw, where)
        stem = "custom" if isinstance(model, Mapping) else Path(text).stem
        name = register_config(config, "".join(c if c.isalnum() or c in "-_." else "_" for c in stem))
    elif text.startswith(("local-dir:", "hf-hub:")):
        schema, ident = text.split(":", 1)
        if schema == "local-dir":
            folder = Path(ident).expanduser()
            config, preprocess = _split_config(_read_json(folder / "open_clip_config.json"), ident)
            found = factory._find_checkpoint_in_dir(folder)
        else:
            cfg_file = _hf_cached(ident, ["open_clip_config.json"], cache_dir)
            if cfg_file is None:
                raise ModelLoadError(f"{text} is not in the Hugging Face cache {_hf_cache_dir(cache_dir)} and cfs never "
                                     f"downloads while editing: `hf download {ident}` first, or use local-dir:DIR")
            config, preprocess = _split_config(_read_json(cfg_file), text)
            found = _hf_cached(ident, [HF_SAFE_WEIGHTS, HF_WEIGHTS], cache_dir)
        name = register_config(config, ident.strip("/").split("/")[-1])
        weights = weights or (Path(found) if found else None)
    else:
        name = text.replace("/", "-")
        base = factory.get_model_config(name)
        if base is None:
            raise ModelLoadError(f"unknown open_clip model '{text}' (see open_clip.list_models(), or give a config)")
        config, preprocess = dict(base), {}
        if pretrained is not None and not Path(pretrained).expanduser().is_file():
            tag = os.fspath(pretrained)
            _check_activation(name, config, tag, allow_gelu_mismatch)
            preprocess = {k: v for k, v in _tag_cfg(name, tag).items()
                          if k in ("mean", "std", "interpolation", "resize_mode", "fill_color")}
            weights = resolve_pretrained_file(name, tag, cache_dir)
    if weights is not None:
        check_model_path(weights)
    return name, config, preprocess, weights

"""Cheap checks of a weights file before any job runs: its header is readable and complete, and
its tensors (their names and shapes) fit the architecture a suite will load them into. Nothing
is read beyond the header: a safetensors file's JSON header is parsed by hand, a PyTorch file is
opened weights-only onto the ``meta`` device (shapes, no data), and the architecture is built on
the ``meta`` device too. A truncated download, a pickle under a .safetensors name or ResNet18
weights for a ResNet50 suite fail at plan time, not after hours of other jobs."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from bench_core.weights import WeightsError

HEADER_LIMIT = 100 * 2 ** 20  # a safetensors header larger than this is no header


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of a safetensors file from its header, checking that the data the
    header promises is all in the file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < n <= min(HEADER_LIMIT, size - 8):
            raise _damaged(path, "its header length is not a safetensors header")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _damaged(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _damaged(path, "its header is not a JSON object")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if not all(_entry(v) for v in tensors.values()):
        raise _damaged(path, "its header's entries are not tensors (dtype, shape, data_offsets)")
    end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if 8 + n + end > size:
        raise _damaged(path, f"it holds {size} bytes and its header promises {8 + n + end}")
    return {k: tuple(v["shape"]) for k, v in tensors.items()}


def _entry(v) -> bool:
    """A safetensors header entry: a dtype, a shape of ints, two data offsets."""
    return (isinstance(v, dict) and isinstance(v.get("shape"), list)
            and all(isinstance(d, int) for d in v["shape"])
            and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2
            and all(isinstance(d, int) for d in v["data_offsets"]))


def _damaged(path: Path, why: str) -> WeightsError:
    return WeightsError(f"{path} is not a valid safetensors file ({why}); it may be truncated, "
                        "or another format (a pickle) under this name. Nothing was run.",
                        "Download it again, or export it with safetensors.torch.save_file.")


def torch_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of a PyTorch state dict (``torch.save``), read weights-only onto the
    meta device (no data is loaded; nothing in the file is executed)."""
    import torch

    try:
        try:
            state = torch.load(path, map_location="meta", weights_only=True, mmap=True)
        except RuntimeError as err:  # the legacy (pre-zip) format cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            state = torch.load(path, map_location="meta", weights_only=True)
    except Exception as err:  # noqa: BLE001 - zip, pickle and torch errors alike
        raise WeightsError(f"{path} could not be read as a PyTorch state dict "
                           f"({type(err).__name__}: {str(err)[:200]}); it may be truncated or "
                           "hold more than tensors. Nothing in it was executed.",
                           "Download it again, or export a plain state dict (safetensors "
                           "preferred).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsError(f"{path} is not a state dict of tensors.",
                           "Export model.state_dict() (safetensors preferred).")
    return {k: tuple(v.shape) for k, v in state.items()}


def file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    return safetensors_shapes(path) if path.suffix == ".safetensors" else torch_shapes(path)


def architecture_shapes(arch: str) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The state-dict shapes of a timm ``arch`` (built on the meta device) and its classifier's
    keys (which fine-tuning replaces, so they need not fit)."""
    import torch

    from bench_core.models import build_model, classifier_keys

    with torch.device("meta"):
        model = build_model(arch, 1000, 0.0)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}, classifier_keys(model)


def parameter_count(path: Path, arch: str) -> int:
    """Trainable parameters of the ``arch`` model whose weights are at ``path`` (its own head
    included), from the file's header: every tensor but the architecture's buffers (BatchNorm
    statistics). The size of Singh et al.'s (2026) static ranking for models."""
    import torch

    from bench_core.models import build_model

    with torch.device("meta"):
        buffers = {name for name, _ in build_model(arch, 1000, 0.0).named_buffers()}
    return sum(math.prod(shape) for name, shape in file_shapes(path).items()
               if name not in buffers)


def check_weights_fit(path: Path, arch: str, what: str) -> None:
    """Raise :class:`WeightsError` unless the file at ``path`` is readable and its tensors, the
    classifier aside, are exactly those of ``arch`` (``what`` names it in the message)."""
    have = file_shapes(path)
    want, head = architecture_shapes(arch)
    counters = "num_batches_tracked"  # BatchNorm's step counters: older exports lack them

    def keep(k: str) -> bool:
        return k not in head and not k.endswith(counters)
    mine = {k: v for k, v in have.items() if keep(k)}
    body = {k: v for k, v in want.items() if keep(k)}
    missing = sorted(set(body) - set(mine))
    unexpected = sorted(set(mine) - set(body))
    wrong = sorted(k for k in set(body) & set(mine) if body[k] != mine[k])
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
            f"{len(wrong)} of another shape (e.g. {wrong[0]}: {mine[wrong[0]]} in the file, "
            f"{body[wrong[0]]} in {arch})" if wrong else "") if part)
        raise WeightsError(f"{what} {path} do not fit a timm {arch}: {detail}.",
                           f"Give {arch} weights (timm's names, e.g. resnet50_a1_0-14fe96d1.pth "
                           "for resnet50), or set architecture.name to the weights' "
                           "architecture.")

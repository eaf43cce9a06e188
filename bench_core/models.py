"""Model builders (timm), source weights, and the layer-freezing protocol of seed 000.

The architecture is timm's ResNet family: global average pooling -> Dropout(drop_rate) ->
Linear, as the paper's modified ResNet50 head. Fine-tuning replaces the prediction layer and
keeps every other weight.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from bench_core.sources import SourceModel
from registry.errors import BenchError, UnknownNameError
from registry.names import unknown_name_message

RESNET_STAGES = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))


class WeightsError(BenchError):
    """Source weights that cannot be found or loaded."""


def load_source_model(source: SourceModel) -> nn.Module:
    """``source`` as a timm model with its own classifier (class count read from the weights)."""
    from safetensors.torch import load_file

    state = load_file(weights_file(source.weights, "Run the suite that pretrains it again.")
                      .as_posix())
    head = build_model(source.arch, 2, 0.0).default_cfg.get("classifier", "fc")
    model = build_model(source.arch, state[f"{head}.weight"].shape[0], 0.0)
    model.load_state_dict(state)
    return model


def build_model(arch: str, n_classes: int, drop_rate: float) -> nn.Module:
    """A randomly initialised ``arch`` with an ``n_classes`` head."""
    if arch not in timm.list_models():
        raise UnknownNameError(unknown_name_message("architecture", arch, timm.list_models("resnet*")),
                               "Use a timm model name (e.g. resnet50, resnet18, resnet10t).")
    return timm.create_model(arch, pretrained=False, num_classes=n_classes, drop_rate=drop_rate)


def weights_file(ref: str, hint: str) -> Path:
    """The existing weights file ``ref`` (``~`` expanded), else a WeightsError with ``hint``."""
    path = Path(ref).expanduser()
    if not path.is_file():
        raise WeightsError(f"Weights file {path} does not exist.", hint)
    return path


def model_from_weights(spec: str, arch: str, n_classes: int, drop_rate: float) -> nn.Module:
    """A model initialised from ``spec``: ``file:PATH`` (a timm/torch state dict or
    safetensors file for ``arch``) or ``hub:NAME`` (timm's hub, needs the internet)."""
    kind, _, ref = spec.partition(":")
    if kind == "file":
        path = weights_file(ref, "Give the path of a timm state dict (.pth or .safetensors).")
        try:
            return timm.create_model(arch, pretrained=True, num_classes=n_classes,
                                     drop_rate=drop_rate,
                                     pretrained_cfg_overlay={"file": str(path)})
        except (RuntimeError, KeyError, ValueError) as err:
            raise WeightsError(f"Weights file {path} does not fit {arch} ({err}).",
                               f"Provide weights saved from a timm {arch}.") from None
    if kind == "hub":
        try:
            return timm.create_model(ref, pretrained=True, num_classes=n_classes,
                                     drop_rate=drop_rate)
        except Exception as err:  # hub errors come in many types
            raise WeightsError(f"Could not load '{ref}' from the hub ({type(err).__name__}).",
                               "Connect to the internet, or download the weights and use "
                               "file:PATH (--imagenet-weights PATH).") from None
    raise WeightsError(f"Weights spec '{spec}' must start with file: or hub:.",
                       "Example: file:~/weights/resnet50_a1_0-14fe96d1.pth")


def load_backbone(target: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load every weight of a source ``state`` dict into ``target`` except the classifier
    (fine-tuning replaces the prediction layer and keeps the rest)."""
    prefix = f"{target.default_cfg.get('classifier', 'fc')}."
    backbone = {k: v for k, v in state.items() if not k.startswith(prefix)}
    try:
        missing, unexpected = target.load_state_dict(backbone, strict=False)
    except RuntimeError as err:
        raise WeightsError(f"Source weights do not fit the target model: {str(err)[:300]}",
                           "Use the same architecture for source and target.") from None
    if unexpected or any(not m.startswith(prefix) for m in missing):
        raise WeightsError(f"Source weights do not fit the target model (missing {missing}, "
                           f"unexpected {unexpected}).", "Use the same architecture for both.")


def stage_modules(model: nn.Module) -> list[list[nn.Module]]:
    """The ResNet stages in order: stem, layer1 ... layer4."""
    try:
        return [[getattr(model, name) for name in names] for names in RESNET_STAGES]
    except AttributeError:
        raise BenchError(f"The freezing protocol needs a ResNet; {type(model).__name__} has no "
                         "conv1/layer1..layer4.", "Use a timm ResNet architecture.") from None


def freeze_all_but_last(model: nn.Module, k: int) -> list[nn.Module]:
    """Seed 000's protocol: only the last ``k`` of the 5 stages (and the head) stay trainable.

    Frozen parameters (BatchNorm affine ones included) get ``requires_grad=False``; the frozen
    modules are returned so the training loop keeps them in eval mode (BatchNorm statistics
    frozen too). ``k=5`` freezes nothing, ``k=0`` trains only the head.
    """
    stages = stage_modules(model)
    if not 0 <= k <= len(stages):
        raise BenchError(f"k={k} is outside 0..{len(stages)} stages.", "Pick k in that range.")
    frozen = [m for stage in stages[:len(stages) - k] for m in stage]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return frozen


def set_train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    """Train mode for the model, eval mode for frozen modules."""
    model.train()
    for module in frozen:
        module.eval()


def state_to_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

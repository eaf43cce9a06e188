"""Model builders (timm), source weights, and the layer-freezing protocol of Venkatesan et al. 2016.

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
from bench_core.weights import WeightsError, load_state, resolve, weights_file
from registry.errors import BenchError, UnknownNameError
from registry.names import unknown_name_message

RESNET_STAGES = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))


def load_source_model(source: SourceModel) -> nn.Module:
    """``source`` as a timm model with its own classifier (class count read from the weights),
    loaded as weights only."""
    state = load_state(weights_file(source.weights, "Run the suite that pretrains it again."))
    model = build_model(source.arch, 2, 0.0)
    weight = next(k for k in classifier_keys(model) if k.endswith("weight"))
    if weight not in state:
        raise WeightsError(f"Weights {source.weights} hold no classifier ({weight}).",
                           f"Give the weights of a trained {source.arch} with its head.")
    model.reset_classifier(state[weight].shape[0])
    _load(model, state, f"Weights {source.weights}", strict=True)
    return model


def classifier_keys(model: nn.Module) -> set[str]:
    """The state-dict keys of ``model``'s classifier (timm's ``get_classifier``), whatever the
    head is called."""
    head = {id(t) for t in [*model.get_classifier().parameters(),
                            *model.get_classifier().buffers()]}
    return {name for name, t in model.state_dict(keep_vars=True).items() if id(t) in head}


def build_model(arch: str, n_classes: int, drop_rate: float) -> nn.Module:
    """A randomly initialised ``arch`` with an ``n_classes`` head."""
    if arch not in timm.list_models():
        raise UnknownNameError(unknown_name_message("architecture", arch, timm.list_models("resnet*")),
                               "Use a timm model name (e.g. resnet50, resnet18, resnet10t).")
    return timm.create_model(arch, pretrained=False, num_classes=n_classes, drop_rate=drop_rate)


def model_from_weights(spec: str, arch: str, n_classes: int, drop_rate: float, *,
                       cache: Path | None = None, tracking_uri: str | None = None) -> nn.Module:
    """An ``arch`` with a new ``n_classes`` head, every other weight from ``spec`` (see
    :mod:`bench_core.weights`: files, published folders, registry models, the hub)."""
    kind, _, ref = spec.partition(":")
    if kind == "hub":
        return _from_hub(spec, ref, n_classes, drop_rate)
    resolved = resolve(spec, cache, tracking_uri)
    if resolved.arch and resolved.arch != arch:
        raise WeightsError(f"{spec} holds a {resolved.arch}, and {arch} was asked for.",
                           f"Use architecture {resolved.arch} (the suite's architecture.name "
                           "or the probe's arch option).")
    model = build_model(arch, n_classes, drop_rate)
    load_backbone(model, load_state(resolved.path), f"Weights {spec}")
    return model


def _from_hub(spec: str, name: str, n_classes: int, drop_rate: float) -> nn.Module:
    """A timm pretrained tag (``hub:timm/resnet50.a1_in1k``), loaded by timm (online)."""
    try:
        return timm.create_model(name, pretrained=True, num_classes=n_classes,
                                 drop_rate=drop_rate)
    except Exception as err:  # hub errors come in many types
        raise WeightsError(f"Could not load '{spec}' from the Hugging Face Hub "
                           f"({type(err).__name__}).", "Connect to the internet, or download "
                           "the weights and use file:PATH or local-dir:PATH.") from None


def load_backbone(target: nn.Module, state: dict[str, torch.Tensor], where: str = "Source weights"
                  ) -> None:
    """Load every weight of a source ``state`` dict into ``target`` except the classifier
    (fine-tuning replaces the prediction layer and keeps the rest)."""
    head = classifier_keys(target)
    _load(target, {k: v for k, v in state.items() if k not in head}, where, strict=False,
          allowed_missing=head)


def _load(model: nn.Module, state: dict, where: str, strict: bool,
          allowed_missing: set[str] = frozenset()) -> None:
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise WeightsError(f"{where} do not fit a {type(model).__name__} "
                           f"({model.default_cfg.get('architecture', '')}): {str(err)[:300]}",
                           "Use weights of the same architecture.") from None
    bad_missing = [m for m in missing if strict or m not in allowed_missing]
    if unexpected or bad_missing:
        raise WeightsError(f"{where} do not fit {model.default_cfg.get('architecture', 'the model')}"
                           f" (missing {bad_missing[:5]}, unexpected {unexpected[:5]}).",
                           "Use weights of the same architecture.")


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

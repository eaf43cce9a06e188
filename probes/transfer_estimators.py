"""Transferability estimators as probes: for each source dataset pretrained by a suite (its
cached weights in BENCH_HOME/models) and each dataset as target, extract the source model's
penultimate features and source-head probabilities on the target's images and score them
(LogME, LEEP, NCE, H-score; higher = better transfer). The matrix holds distance = -score with
rows = source models, columns = target data; rows of datasets the suite did not pretrain are
NaN, and the diagonal is 0 by convention."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import load_file

from benchmark.config import resolve_suite
from benchmark.data import load_device_data
from benchmark.models import build_model
from benchmark.train import BatchPrep
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from probes.estimators import hscore, leep, logme, nce
from registry.errors import RegistryError
from registry.store import DatasetRecord, RegistryStore


class EstimatorOptions(ProbeOptions):
    suite: str = "digits"
    max_samples: int = 2000
    shrinkage: bool = False
    seed: int = 0


def suite_weights(suite_name: str, store: RegistryStore, home) -> tuple[dict[str, str], object]:
    """Source name -> cached pretrained weights file of ``suite_name`` (only those present)."""
    from benchmark.plan import make_plan

    suite = resolve_suite(suite_name)
    hint = f"Run `bench run --suite {suite_name}` first."
    try:
        plan = make_plan(suite, store)
    except RegistryError:  # its datasets are not even registered: the suite never ran here
        raise ProbeError(f"Suite '{suite_name}' has no pretrained source models in "
                         f"{home / 'models'}.", hint) from None
    found = {job.source: home / "models" / f"{job.config_hash}.safetensors" for job in plan.pretrain}
    present = {k: str(v) for k, v in found.items() if v.is_file()}
    if not present:
        raise ProbeError(f"Suite '{suite_name}' has no pretrained source models in "
                         f"{home / 'models'}.", hint)
    return present, suite


class _EstimatorProbe(Probe):
    Options = EstimatorOptions
    symmetric = False
    needs: ClassVar[str] = "features"

    def score(self, features: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> float:
        raise NotImplementedError

    def _model(self, weights: str, suite) -> torch.nn.Module:
        state = load_file(weights)
        classifier = build_model(suite.architecture.name, 2, 0.0).default_cfg.get("classifier", "fc")
        model = build_model(suite.architecture.name, state[f"{classifier}.weight"].shape[0], 0.0)
        model.load_state_dict(state)
        return model.to(self.context.device).eval()

    def _sample(self, record: DatasetRecord, suite, device) -> tuple[torch.Tensor, np.ndarray]:
        """The target's images (a seeded sample of at most max_samples) and their labels."""
        data = load_device_data(record, suite.finetune_defaults.image_size, device)
        rng = np.random.default_rng(self.opts.seed)
        idx = np.sort(rng.permutation(len(data.labels_np))[:self.opts.max_samples])
        return data.images[torch.as_tensor(idx, device=device)], data.labels_np[idx]

    @torch.no_grad()
    def _outputs(self, model: torch.nn.Module, images: torch.Tensor, prep: BatchPrep
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features and source-head probabilities of ``model`` on ``images``."""
        feats, probs = [], []
        for s in range(0, len(images), 256):
            f = model.forward_head(model.forward_features(prep(images[s:s + 256])), pre_logits=True)
            feats.append(f.float().cpu())
            probs.append(torch.softmax(model.get_classifier()(f).float(), 1).cpu())
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        store = RegistryStore(self.context.paths.registry_db)
        weights, suite = suite_weights(self.opts.suite, store, self.context.paths.home)
        device = torch.device(self.context.device)
        names = [r.name for r in records]
        models = {n: self._model(weights[n], suite) for n in names if n in weights}
        prep = BatchPrep(device)
        d = np.full((len(names), len(names)), np.nan)
        with self.context.progress(f"{self.name} scores", len(names)) as advance:
            for j, rec in enumerate(records):  # each target's data loaded once
                images, labels = self._sample(rec, suite, device)
                for i, src in enumerate(names):
                    if src in models and i != j:
                        f, p = self._outputs(models[src], images, prep)
                        d[i, j] = -self.score(f, p, labels)
                advance(1)
        np.fill_diagonal(d, 0.0)
        return ProbeResult(self.name, names, d, details={
            "suite": self.opts.suite, "sources_with_models": sorted(weights),
            "distance": "-score (rows: source models, columns: target data)"})


@register_probe
class LogMEProbe(_EstimatorProbe):
    name = "logme"

    def score(self, features, probs, labels):
        return logme(features, labels)


@register_probe
class LEEPProbe(_EstimatorProbe):
    name = "leep"

    def score(self, features, probs, labels):
        return leep(probs, labels)


@register_probe
class NCEProbe(_EstimatorProbe):
    name = "nce"

    def score(self, features, probs, labels):
        return nce(probs.argmax(axis=1), labels)


@register_probe
class HScoreProbe(_EstimatorProbe):
    name = "hscore"

    def score(self, features, probs, labels):
        return hscore(features, labels, shrinkage=self.opts.shrinkage)

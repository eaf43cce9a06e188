"""SimEx fleet speed, side by side in one run (not a test; run by hand):

    python tests/bench/bench_simex.py [--k 6] [--steps 60] [--batch 64] [--channels 1]
                                      [--threads N] [--device auto]

K autoencoders trained for the same number of steps on the same batches, from the same initial
weights: (a) the grouped fleet of probes/simex.py (one network, grouped convolutions, batched
matmuls), (b) the earlier vmap fleet (parameters stacked with torch.func.stack_module_state,
every step through vmap; kept here only for this comparison), (c) one autoencoder at a time (K
models, K Adams). The three are timed in interleaved rounds, so that load from other processes
on the machine hits all of them alike. Also times evaluation of one query batch by all K.
Prints steps/s and the ratios.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from bench_core.devices import resolve_device
from probes.simex import Fleet, LeNetAutoencoder, per_sample_loss


class VmapFleet:
    """The earlier fleet: K autoencoders with stacked parameters, run together with vmap."""

    def __init__(self, models: list[LeNetAutoencoder]) -> None:
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")
        for p in self.params.values():
            p.requires_grad_(True)

    def _call(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def forward_each(self, xs: torch.Tensor) -> torch.Tensor:
        return vmap(self._call)(self.params, self.buffers, xs)

    def forward_all(self, x: torch.Tensor) -> torch.Tensor:
        return vmap(self._call, in_dims=(0, 0, None))(self.params, self.buffers, x)


class OneAtATime:
    """K standalone autoencoders, each with its own Adam, stepped one after the other."""

    def __init__(self, models: list[LeNetAutoencoder], lr: float) -> None:
        self.models = models
        self.opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in models]

    def step(self, xs: torch.Tensor) -> None:
        for k, (m, o) in enumerate(zip(self.models, self.opts)):
            loss = per_sample_loss(xs[k], m(xs[k]), "mse").mean()
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [m(x) for m in self.models]


def fleet_stepper(fleet: Fleet | VmapFleet, lr: float) -> Callable[[torch.Tensor], None]:
    """One training step of a fleet: the sum of the members' mean losses, one Adam."""
    opt = torch.optim.Adam(fleet.parameters(), lr=lr)

    def step(xs: torch.Tensor) -> None:
        loss = per_sample_loss(xs, fleet.forward_each(xs), "mse").mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_rounds(runs: dict[str, Callable[[int], None]], n: int, rounds: int,
                 device: torch.device) -> dict[str, float]:
    """Seconds each run needs for n calls, interleaved in `rounds` rounds (after one warm-up)."""
    for run in runs.values():
        run(0)
    total = dict.fromkeys(runs, 0.0)
    per_round = [n // rounds + (r < n % rounds) for r in range(rounds)]
    done = 0
    for count in per_round:
        for name, run in runs.items():
            _sync(device)
            start = time.perf_counter()
            for i in range(done, done + count):
                run(i)
            _sync(device)
            total[name] += time.perf_counter() - start
        done += count
    return total


def _members(k: int, channels: int, device: torch.device) -> list[LeNetAutoencoder]:
    torch.manual_seed(0)
    return [LeNetAutoencoder(channels).to(device) for _ in range(k)]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--k", type=int, default=6)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = torch.rand(args.k, args.batch * 4, args.channels, 32, 32, device=device)
    batches = [data[:, (s % 4) * args.batch:(s % 4 + 1) * args.batch] for s in range(4)]
    members = _members(args.k, args.channels, device)
    fleets: dict[str, nn.Module | VmapFleet | OneAtATime] = {
        "grouped fleet": Fleet(members), "vmap fleet": VmapFleet(members),
        "one at a time": OneAtATime(copy.deepcopy(members), lr=1e-3)}
    steppers = {"grouped fleet": fleet_stepper(fleets["grouped fleet"], 1e-3),
                "vmap fleet": fleet_stepper(fleets["vmap fleet"], 1e-3),
                "one at a time": fleets["one at a time"].step}
    train = timed_rounds({n: (lambda i, s=s: s(batches[i % 4])) for n, s in steppers.items()},
                         args.steps, args.rounds, device)
    q = data[0, :args.batch]
    with torch.no_grad():
        evals = timed_rounds({n: (lambda i, f=f: f.forward_all(q)) for n, f in fleets.items()},
                             20, args.rounds, device)
    _report(args, device, train, {n: t / 20 for n, t in evals.items()})


def _report(args: argparse.Namespace, device: torch.device, train: dict[str, float],
            evals: dict[str, float]) -> None:
    print(f"device {device}, {torch.get_num_threads()} threads; {args.k} autoencoders of "
          f"{args.channels} channel(s), {args.steps} steps of batch {args.batch}, "
          f"{args.rounds} interleaved rounds")
    base_train, base_eval = train["one at a time"], evals["one at a time"]
    for name in train:
        print(f"{name:14s} training {args.steps / train[name]:7.2f} steps/s (all {args.k}) "
              f"x{base_train / train[name]:.2f} | evaluation of one query batch "
              f"{evals[name] * 1000:6.1f} ms x{base_eval / evals[name]:.2f}")
    print("(x: speed relative to one at a time)")


if __name__ == "__main__":
    main(sys.argv[1:])

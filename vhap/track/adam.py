"""Adam for the tracker: the fused ATen kernel behind ``torch.optim.Adam(fused=True)``, without ``torch.optim``.

Why not ``torch.optim.Adam``: creating the first ``torch.optim`` optimiser imports ``torch._dynamo`` (its methods
are wrapped in ``torch._disable_dynamo``), which takes seconds — a large part of a short GPU run.
This class does the same arithmetic with the same kernel (``torch._fused_adam_``, one launch per parameter
group) and is CUDA-graph safe by construction: the step counters, moments and learning rates are tensors on the
parameters' device that are created with the optimiser and only ever updated in place (:meth:`reset` zeroes
them, which is exactly a new optimiser; :class:`ExponentialDecay` rewrites the learning rates). Its
``state_dict`` has ``torch.optim.Adam``'s layout, so checkpoints written with either load into both.

Defaults: betas (0.9, 0.999), eps 1e-8, no weight decay, no amsgrad — ``torch.optim.Adam``'s.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam over parameter groups ``[{"params": [tensor, ...], "lr": float, **extra}, ...]``.

    Each group's ``"lr"`` becomes a 0-dim float32 tensor on its parameters' device (read by the kernel at run
    time, so a recorded step follows later changes); other keys (e.g. ``"name"``) are kept as given.
    """

    def __init__(self, param_groups: list[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.param_groups: list[dict] = []
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        for group in param_groups:
            params = list(group["params"])
            if not params:
                continue
            device = params[0].device
            if any(p.device != device for p in params):
                raise ValueError("all parameters of one Adam group must be on one device")
            g = dict(group, params=params)
            g["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
            self.param_groups.append(g)
            for p in params:
                self.state[p] = {
                    "step": torch.zeros((), dtype=torch.float32, device=device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }

    # ------------------------------------------------------------------ optimisation
    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step for every parameter that has a gradient (no host synchronisation)."""
        beta1, beta2 = self.betas
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self.state[p] for p in params]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1.0)
            torch._fused_adam_(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=0.0,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )

    def reset(self) -> None:
        """Zero the step counters and moments in place: the next step is that of a new optimiser, and every tensor
        keeps its address (a recorded CUDA graph stays valid)."""
        for state in self.state.values():
            for value in state.values():
                value.zero_()

    # ------------------------------------------------------------------ checkpoints
    def _ordered_params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict:
        """``torch.optim.Adam``'s layout: ``state`` by parameter index, ``param_groups`` with float ``lr``."""
        params = self._ordered_params()
        index = {id(p): i for i, p in enumerate(params)}
        groups = []
        for g in self.param_groups:
            extra = {k: v for k, v in g.items() if k not in ("params", "lr")}
            hyper = {"betas": self.betas, "eps": self.eps, "weight_decay": 0.0, "amsgrad": False, "maximize": False}
            groups.append({**extra, **hyper, "lr": float(g["lr"]), "params": [index[id(p)] for p in g["params"]]})
        return {
            "state": {i: dict(self.state[p]) for i, p in enumerate(params)},
            "param_groups": groups,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Copy a state (ours or ``torch.optim.Adam``'s, same parameter order) into this optimiser in place."""
        params = self._ordered_params()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or sum(len(g["params"]) for g in groups) != len(params):
            raise ValueError("optimizer state does not match the parameter groups")
        for g, saved in zip(self.param_groups, groups, strict=True):
            g["lr"].fill_(float(saved["lr"]))
        for i, p in enumerate(params):
            saved = state_dict["state"].get(i)
            mine = self.state[p]
            if saved is None:  # never stepped
                for v in mine.values():
                    v.zero_()
                continue
            for key in ("exp_avg", "exp_avg_sq"):
                mine[key].copy_(saved[key])
            mine["step"].fill_(float(saved["step"]))


class ExponentialDecay:
    """Learning rate × ``gamma`` after every :meth:`step` (``torch.optim.lr_scheduler.ExponentialLR``), written
    into the optimiser's learning-rate tensors in place."""

    def __init__(self, optimizer: Adam, gamma: float):
        self.optimizer = optimizer
        self.gamma = float(gamma)
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        factor = self.gamma**self.last_epoch
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["lr"].fill_(base * factor)

    def state_dict(self) -> dict:
        return {"gamma": self.gamma, "base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = [float(b) for b in state.get("base_lrs", self.base_lrs)]
        self.last_epoch = int(state["last_epoch"])
        self._apply()

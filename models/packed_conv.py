"""K conv highway nets of one preset as one module: grouped convolutions over stacked weights.

The K trials' feature maps sit side by side along the channel axis, (B, K·C, H, W), and every
convolution is one ``conv2d`` with ``groups=K``: group k sees trial k's channels only and has
trial k's weights, so each trial computes exactly what its own net would, in one kernel launch
per layer instead of K. Pooling and dropout act per channel, so they need no grouping, and
dropout draws an independent mask for every trial. A highway layer's H and T convs are one
grouped conv with 2C outputs per trial.

Every parameter is stored trial-major (its first dimension is K, or K·something), so
``p.view(K, -1)`` is each trial's slice: the engine scales updates per trial with it. Weights
convert to and from :class:`ConvHighwayNet` state dicts, so a trial trained in a pack is stored
and analysed like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .activations import get_activation
from .conv import ConvHighwayNet
from .presets import Conv, ConvConfig, Dropout, Highway, Pool


class PackedConvNet(nn.Module):
    """Input (K, B, C, H, W), each trial its own batch → logits (K, B, outputs)."""

    def __init__(self, config: ConvConfig, k: int) -> None:
        super().__init__()
        if config.carry_gate:
            raise ValueError("packs do not support an independent carry gate; train it singly")
        self.config, self.k = config, k
        self._act = get_activation(config.activation)
        ref = ConvHighwayNet(config)  # for the shapes; its weights are not used
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self._plan = config.layers[:-1]  # the single net's layers, the head apart
        for spec, module in zip(self._plan, ref.layers, strict=True):
            if isinstance(spec, Conv | Highway):
                conv = module.conv if isinstance(spec, Conv) else module.h
                out = conv.out_channels * (1 if isinstance(spec, Conv) else 2)
                self.weights.append(nn.Parameter(torch.zeros(k * out, *conv.weight.shape[1:])))
                self.biases.append(nn.Parameter(torch.zeros(k * out)))
        self.head_w = nn.Parameter(torch.zeros(k, ref.classifier.in_features,
                                               ref.classifier.out_features))
        self.head_b = nn.Parameter(torch.zeros(k, 1, ref.classifier.out_features))
        # The single net's pooling and dropout modules (no weights), in a plain list so that
        # none of ``ref``'s parameters become the pack's.
        self._modules_of: list[nn.Module] = list(ref.layers)

    def ordered_parameters(self) -> list[nn.Parameter]:
        """Every parameter in one fixed order: the convs' weights, their biases, the head's
        weight and bias (``parameters()`` puts the head first)."""
        return [*self.weights, *self.biases, self.head_w, self.head_b]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        h = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])  # (B, K·C, H, W)
        i = 0
        for spec, module in zip(self._plan, self._modules_of, strict=True):
            if isinstance(spec, Dropout):
                h = F.dropout(h, module.p, self.training)  # type: ignore[arg-type]
            elif isinstance(spec, Pool):
                h = module(h)
            elif isinstance(spec, Conv):
                h = self._act(F.conv2d(h, self.weights[i], self.biases[i], padding=spec.pad,
                                       groups=k))
                i += 1
            else:
                assert isinstance(spec, Highway)
                c = h.shape[1] // k
                z = F.conv2d(h, self.weights[i], self.biases[i], padding=spec.kernel // 2,
                             groups=k)
                z = z.view(b, k, 2, c, *z.shape[2:])  # per trial: H's C channels, then T's
                carry = h.view(b, k, c, *h.shape[2:])
                block, gate = self._act(z[:, :, 0]), torch.sigmoid(z[:, :, 1])
                h = (carry + gate * (block - carry)).reshape(b, k * c, *h.shape[2:])
                i += 1
        feats = h.view(b, k, -1).transpose(0, 1)  # (K, B, C·H·W), the single net's order
        return torch.baddbmm(self.head_b, feats, self.head_w)  # (K, B, outputs)

    # -- conversion to and from single nets -------------------------------------------------

    def _names(self) -> list[tuple[str, bool]]:
        """(single-net prefix, is a highway layer) of each conv's weights, in order."""
        return [(f"layers.{i}", isinstance(spec, Highway))
                for i, spec in enumerate(self._plan) if isinstance(spec, Conv | Highway)]

    @classmethod
    def from_state_dicts(
        cls, config: ConvConfig, state_dicts: Sequence[dict[str, torch.Tensor]]
    ) -> PackedConvNet:
        k = len(state_dicts)
        pack = cls(config, k)
        pack.to(dtype=state_dicts[0]["classifier.weight"].dtype)
        with torch.no_grad():
            for j, (prefix, highway) in enumerate(pack._names()):
                if not highway:
                    w = [sd[f"{prefix}.conv.weight"] for sd in state_dicts]
                    bias = [sd[f"{prefix}.conv.bias"] for sd in state_dicts]
                else:
                    w = [torch.cat([sd[f"{prefix}.h.weight"], sd[f"{prefix}.t.weight"]])
                         for sd in state_dicts]
                    bias = [torch.cat([sd[f"{prefix}.h.bias"], sd[f"{prefix}.t.bias"]])
                            for sd in state_dicts]
                pack.weights[j].copy_(torch.cat(w))
                pack.biases[j].copy_(torch.cat(bias))
            pack.head_w.copy_(torch.stack([sd["classifier.weight"].T for sd in state_dicts]))
            pack.head_b.copy_(torch.stack([sd["classifier.bias"][None] for sd in state_dicts]))
        return pack

    @torch.no_grad()
    def trial_state_dict(
        self, i: int, params: Sequence[torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Trial ``i``'s weights under :class:`ConvHighwayNet`'s names, on the CPU; from
        ``params`` (in :meth:`ordered_parameters`' order) instead of the live ones."""
        params = list(params if params is not None else self.ordered_parameters())
        n = len(self.weights)
        weights, biases, (head_w, head_b) = params[:n], params[n : 2 * n], params[2 * n :]
        sd: dict[str, torch.Tensor] = {}
        for j, (prefix, highway) in enumerate(self._names()):
            w = weights[j].view(self.k, -1, *weights[j].shape[1:])[i]
            bias = biases[j].view(self.k, -1)[i]
            if not highway:
                sd[f"{prefix}.conv.weight"], sd[f"{prefix}.conv.bias"] = w, bias
            else:
                c = w.shape[0] // 2
                sd[f"{prefix}.h.weight"], sd[f"{prefix}.t.weight"] = w[:c], w[c:]
                sd[f"{prefix}.h.bias"], sd[f"{prefix}.t.bias"] = bias[:c], bias[c:]
        sd["classifier.weight"], sd["classifier.bias"] = head_w[i].T, head_b[i, 0]
        return {key: v.detach().cpu().contiguous().clone() for key, v in sd.items()}

    def multipliers(self, bias_lr: float, head_decay: float) -> list[tuple[float, float]]:
        """(lr multiplier, decay multiplier) of each parameter, in :meth:`ordered_parameters`'
        order: the
        definitions' rules (biases: ``bias_lr`` and no decay; the head's weights: ``head_decay``
        times the decay)."""
        n = len(self.weights)
        return [(1.0, 1.0)] * n + [(bias_lr, 0.0)] * n + [(1.0, head_decay), (bias_lr, 0.0)]

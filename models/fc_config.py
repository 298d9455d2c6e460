"""What a fully connected net of Figure 1 is, without torch: its kinds, widths, bounds and
:class:`FCConfig` (settings check them before torch is imported; ``fc.py`` builds the nets)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .activations import check_activation


@dataclass(frozen=True)
class Kind:
    """A kind of fully connected net: what its hidden layers are, and the paper's width."""

    highway: bool  # hidden layers y = H·T + x·(1 − T); else plain layers y = H
    width: int  # the paper's: a highway layer (5,100 weights) costs what a plain one (5,112) does


KINDS = {"highway": Kind(highway=True, width=50), "plain": Kind(highway=False, width=71)}
MAX_DEPTH = 1000
MAX_WIDTH = 4096  # far past the papers' 50/71; bounds what a typo can ask for


def check_depth(depth: int) -> None:
    """The one depth bound, for every config that takes a depth."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth {depth} out of range; allowed: 1..{MAX_DEPTH}")


@dataclass(frozen=True)
class FCConfig:
    kind: str = "highway"
    depth: int = 10
    width: int = 0  # 0: the paper's width for this kind
    activation: str = "relu"
    gate_bias: float = -2.0
    in_features: int = 784
    num_classes: int = 10
    carry_gate: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model {self.kind!r}; allowed: {', '.join(KINDS)}")
        check_depth(self.depth)
        if not 0 <= self.width <= MAX_WIDTH:
            raise ValueError(
                f"width {self.width} out of range; allowed: 0..{MAX_WIDTH} (0: the paper's)"
            )
        check_activation(self.activation)
        if self.width == 0:
            object.__setattr__(self, "width", KINDS[self.kind].width)

    @property
    def highway(self) -> bool:
        """Whether the hidden layers are highway layers (else plain)."""
        return KINDS[self.kind].highway

    def with_(self, **changes: object) -> FCConfig:
        return replace(self, **changes)  # type: ignore[arg-type]

"""A trained net as a ``torch.export`` program that needs neither this project nor its classes:
``torch.export.load(FILE).module()`` maps float images ``(N, C, H, W)`` with pixels in [0, 1]
to logits ``(N, classes)``, for any batch size N."""

from __future__ import annotations

import torch
from torch import nn


class Images(nn.Module):
    """Images (N, C, H, W) in [0, 1] -> logits; only what the trained net needs."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def export_model(
    model: nn.Module, image_shape: tuple[int, int, int]
) -> torch.export.ExportedProgram:
    """``model`` (an FCNet or ConvHighwayNet, eval mode) as an exported program over images
    of ``image_shape`` with a dynamic batch size."""
    wrapped = Images(model).eval()
    example = torch.rand(2, *image_shape)
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(wrapped, (example,), dynamic_shapes={"images": {0: batch}})

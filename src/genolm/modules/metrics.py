"""Classification metrics (torchmetrics): accuracy, macro F1, MCC, AUROC, AUPRC."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Accuracy, AveragePrecision, F1Score, MatthewsCorrCoef, MetricCollection
from torchmetrics.classification import AUROC

METRIC_NAMES = ("acc", "f1", "mcc", "auroc", "auprc")


class ClassificationMetrics(nn.Module):
    """All classification metrics of one stage, fed with class probabilities.

    Binary tasks score AUROC/AUPRC on p(class 1); multi-class tasks use one-vs-rest macro
    averages. Accuracy, macro F1 and MCC use the arg-max class.
    """

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.num_labels = num_labels
        common = {"task": "multiclass", "num_classes": num_labels}
        ranking = {"task": "binary"} if num_labels == 2 else {**common, "average": "macro"}
        self.hard = MetricCollection({"acc": Accuracy(**common, average="micro"),
                                      "f1": F1Score(**common, average="macro"),
                                      "mcc": MatthewsCorrCoef(**common)})
        self.soft = MetricCollection({"auroc": AUROC(**ranking), "auprc": AveragePrecision(**ranking)})

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of probabilities ``(N, C)`` and integer targets ``(N,)``."""
        self.hard.update(probs.argmax(-1), target)
        self.soft.update(probs[:, 1] if self.num_labels == 2 else probs, target)

    def compute(self) -> dict[str, torch.Tensor]:
        """Metric values keyed by :data:`METRIC_NAMES`."""
        return {**self.hard.compute(), **self.soft.compute()}

    def reset(self) -> None:
        """Clear accumulated state."""
        self.hard.reset()
        self.soft.reset()

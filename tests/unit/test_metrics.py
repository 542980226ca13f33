"""genolm's torchmetrics-based metrics equal scikit-learn's on fixed predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from genolm.modules.metrics import ClassificationMetrics


@pytest.mark.parametrize("num_labels", [2, 3])
def test_metrics_match_sklearn(num_labels: int) -> None:
    gen = torch.Generator().manual_seed(num_labels)
    target = torch.randint(0, num_labels, (500,), generator=gen)
    logits = torch.randn(500, num_labels, generator=gen) + 1.5 * torch.nn.functional.one_hot(target)
    probs = logits.softmax(-1)
    metrics = ClassificationMetrics(num_labels)
    for lo in range(0, 500, 128):  # batched updates
        metrics.update(probs[lo:lo + 128], target[lo:lo + 128])
    ours = {k: float(v) for k, v in metrics.compute().items()}
    y, p, pred = target.numpy(), probs.numpy(), probs.argmax(-1).numpy()
    if num_labels == 2:
        auroc, auprc = skm.roc_auc_score(y, p[:, 1]), skm.average_precision_score(y, p[:, 1])
    else:
        onehot = np.eye(num_labels)[y]
        auroc = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
        auprc = skm.average_precision_score(onehot, p, average="macro")
    expected = {"acc": skm.accuracy_score(y, pred), "f1": skm.f1_score(y, pred, average="macro"),
                "mcc": skm.matthews_corrcoef(y, pred), "auroc": auroc, "auprc": auprc}
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-5), name
    assert 0.3 < ours["mcc"] < 0.95  # the fixture is informative, not degenerate

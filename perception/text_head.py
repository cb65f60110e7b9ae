"""The optional fitted head of the text classifier: softmax regression over its features.

Zero-shot prototypes know only the taxonomy's labels. With labelled examples (in production a
hand-labelled sample of recorded observations; here, recordings from the simulated world) a
linear softmax layer over [text embedding, keyword evidence] learns which directions separate
the subcategories. numpy and scipy's L-BFGS are enough for 174 classes and a few thousand
examples (seconds on a CPU); the optimum of this convex loss is unique, so a fit is repeatable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax


@dataclass(frozen=True)
class FittedHead:
    """Logits = features @ weights + bias, one column per subcategory of `labels`."""

    labels: tuple[str, ...]
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(features @ self.weights + self.bias, axis=1)

    def save(self, path: Path) -> None:
        np.savez(path, labels=np.array(self.labels), weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path: Path) -> FittedHead:
        with np.load(path, allow_pickle=False) as data:
            return cls(tuple(str(x) for x in data["labels"]), data["weights"], data["bias"])


def _loss(params: np.ndarray, x: np.ndarray, onehot: np.ndarray, l2: float
          ) -> tuple[float, np.ndarray]:
    """Mean cross-entropy plus an L2 penalty on the weights, and its gradient."""
    n, d = x.shape
    k = onehot.shape[1]
    weights, bias = params[: d * k].reshape(d, k), params[d * k:]
    log_p = log_softmax(x @ weights + bias, axis=1)
    loss = -(onehot * log_p).sum() / n + 0.5 * l2 * float((weights ** 2).sum())
    residual = (np.exp(log_p) - onehot) / n
    grad = np.concatenate([(x.T @ residual + l2 * weights).ravel(), residual.sum(0)])
    return loss, grad


def fit_head(features: np.ndarray, labels: Sequence[str], classes: Sequence[str],
             l2: float = 1e-5, max_iter: int = 300) -> FittedHead:
    """Softmax regression of `labels` (each one of `classes`) on `features`.

    Classes never seen keep zero weights and a bias that the loss drives down, so they are
    predicted only when nothing else fits; `l2` is small because features are cosines in
    [-1, 1] and separating 174 classes needs large weights. `max_iter` bounds the time (3000
    examples: ~0.05 s per iteration on 2 cores); held-out accuracy stops moving long before
    the loss converges, which for separable data is slow.
    """
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels) - index.keys())
    if unknown:
        raise ValueError(f"labels not in the taxonomy: {unknown[:3]}")
    x = np.asarray(features, dtype=np.float64)
    onehot = np.zeros((len(labels), len(classes)))
    onehot[np.arange(len(labels)), [index[name] for name in labels]] = 1.0
    d, k = x.shape[1], len(classes)
    result = minimize(_loss, np.zeros(d * k + k), args=(x, onehot, l2), jac=True,
                      method="L-BFGS-B", options={"maxiter": max_iter})
    weights = result.x[: d * k].reshape(d, k).astype(np.float32)
    return FittedHead(tuple(classes), weights, result.x[d * k:].astype(np.float32))

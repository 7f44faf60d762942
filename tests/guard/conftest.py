"""Small generated data for the guard's tests: three Gaussian classes on a 3-dimensional plane inside 8
features (like images, real data fills few of the directions it could), and a softmax (multinomial
logistic) model trained on them with analytic gradients, so that FGSM needs no framework."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from pipewarden.guard import InferenceGuard

Array = np.ndarray[Any, Any]
FEATURES = 8
CLASSES = 3
LATENT = 3
_RNG = np.random.default_rng(7)
CENTRES = _RNG.normal(0.0, 3.0, size=(CLASSES, LATENT))
PLANE = _RNG.normal(0.0, 1.0, size=(LATENT, FEATURES))


def sample(n: int, *, seed: int) -> tuple[Array, Array]:
    """`n` clean rows and their classes, from a fixed mixture on the plane, with a little noise off it."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=n)
    latent = CENTRES[labels] + rng.normal(0.0, 1.0, size=(n, LATENT))
    return latent @ PLANE + rng.normal(0.0, 0.1, size=(n, FEATURES)), labels


@dataclass
class Softmax:
    """Multinomial logistic regression, trained by full-batch gradient descent."""

    weights: Array
    bias: Array

    @classmethod
    def train(cls, x: Array, y: Array, *, steps: int = 300, rate: float = 0.1) -> Softmax:
        model = cls(np.zeros((x.shape[1], CLASSES)), np.zeros(CLASSES))
        onehot = np.eye(CLASSES)[y]
        for _ in range(steps):
            error = model.predict_proba(x) - onehot
            model.weights -= rate * x.T @ error / len(x)
            model.bias -= rate * error.mean(axis=0)
        return model

    def predict_proba(self, x: Array) -> Array:
        logits = np.asarray(x) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def predict(self, x: Array) -> Array:
        return np.asarray(self.predict_proba(x).argmax(axis=1))

    def fgsm(self, x: Array, y: Array, *, eps: float, steps: int) -> Array:
        """Iterated fast gradient sign steps of eps each on the cross-entropy (Goodfellow et al., 2015)."""
        adv = x.copy()
        onehot = np.eye(CLASSES)[y]
        for _ in range(steps):
            gradient = (self.predict_proba(adv) - onehot) @ self.weights.T  # d loss / d x, analytically
            adv = adv + eps * np.sign(gradient)
        return adv


@pytest.fixture(scope="session")
def reference() -> tuple[Array, Array]:
    return sample(1500, seed=1)


@pytest.fixture(scope="session")
def model(reference: tuple[Array, Array]) -> Softmax:
    return Softmax.train(*reference)


@pytest.fixture(scope="session")
def guard(reference: tuple[Array, Array], model: Softmax) -> InferenceGuard:
    """A guard fitted with labels and predict_proba; shared, so tests must not rely on its watch state."""
    x, y = reference
    return InferenceGuard().fit(x, labels=y, predict_proba=model.predict_proba)

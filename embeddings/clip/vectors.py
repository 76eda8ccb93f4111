"""Arithmetic on embeddings, kept apart from the model so that callers need no torch."""
import numpy as np


def cosine(a, b) -> float:
    """Cosine similarity of two embeddings (0.0 when either is all zeros)."""
    a, b = np.asarray(a, np.float32).ravel(), np.asarray(b, np.float32).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings have different sizes: {a.size} and {b.size}")
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom else 0.0

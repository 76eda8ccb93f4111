"""Arithmetic on embeddings, kept apart from the model so that callers need no torch."""
import numpy as np


def cosine(a, b) -> float:
    """Cosine similarity of two embeddings, in [-1, 1]; 0.0 when either is all zeros (a zero vector
    has no direction, as in most libraries). ValueError for different sizes or non-finite values."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two embeddings differ in length ({a.size} and {b.size})")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("embeddings must be finite numbers")
    # Scaled first, so that no large value overflows the norms.
    a, b = a / (np.abs(a).max(initial=0.0) or 1.0), b / (np.abs(b).max(initial=0.0) or 1.0)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return 0.0 if na == 0 or nb == 0 else float(np.clip(a @ b / (na * nb), -1.0, 1.0))

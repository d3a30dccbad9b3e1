"""Scoring linkage against ground truth (synthetic data only; the platform never calls it).

Used by the tests, ``scripts/linkage_bench.py`` and ``make bench``.
"""

from __future__ import annotations

from collections.abc import Iterable


def pairwise_scores(predicted: Iterable[tuple], truth: Iterable[tuple]) -> dict[str, float]:
    """Precision, recall and F1 of predicted unordered pairs against true pairs."""
    pred = {tuple(sorted(p)) for p in predicted}
    true = {tuple(sorted(p)) for p in truth}
    tp = len(pred & true)
    precision = tp / len(pred) if pred else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": tp,
        "false_positives": len(pred) - tp,
        "false_negatives": len(true) - tp,
    }

"""Ranking quality on the demo gallery: precision@k of queries such as "a <colour> <shape>".

An image is relevant to a query when its drawn attributes equal the query's (for "a red circle":
colour red and shape circle); precision@k is the fraction of the top k results that are relevant,
averaged over the queries. Pure Python: importable without Django, numpy or torch.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence


def relevant_ids(metas: Iterable[Mapping[str, str]], **attrs: str) -> set[int]:
    """Positions in `metas` (gallery order) of the images whose attributes equal all of `attrs`.

    `relevant_ids(metas, colour="red", shape="circle")` is the ground truth of "a red circle".
    """
    return {i for i, meta in enumerate(metas) if all(meta[key] == value for key, value in attrs.items())}


def precision_at_k(
    ranked_ids_per_query: Sequence[Sequence[Hashable]],
    relevant_ids_per_query: Sequence[Iterable[Hashable]],
    k: int,
) -> float:
    """Mean over queries of (how many of the query's top k ids are relevant to it) / k.

    `ranked_ids_per_query[q]`: query q's result ids, best first; `relevant_ids_per_query[q]`: the
    ids right for it. Ids are anything hashable (gallery positions, file names), the same kind in
    both. A query with fewer than k results counts the missing ones as wrong. For one query's own
    precision, pass one-item lists.
    """
    if len(ranked_ids_per_query) != len(relevant_ids_per_query):
        raise ValueError(f"{len(ranked_ids_per_query)} rankings but {len(relevant_ids_per_query)} relevant sets")
    if not ranked_ids_per_query or k < 1:
        raise ValueError("precision@k needs at least one query and k >= 1")
    per_query = []
    for ranked, relevant in zip(ranked_ids_per_query, relevant_ids_per_query, strict=True):
        relevant = set(relevant)
        per_query.append(sum(i in relevant for i in list(ranked)[:k]) / k)
    return math.fsum(per_query) / len(per_query)

"""Blends: two boosters' log-odds mixed with fixed weights, written as one booster.

A booster's raw score is the sum of its trees' leaf values, so ``w * a + (1 - w) * b`` is the
booster holding every tree of both with the leaf (and internal) values scaled by their weights.
Scoring, TreeSHAP reasons (exact, still adding up to the raw score), the saved model file, the
pyfunc and Spark need nothing else. Both boosters must come from the same feature matrix.
"""

from __future__ import annotations

import re

import lightgbm as lgb

_TREE = re.compile(r"(?m)^(?=Tree=\d+$)")
_VALUES = re.compile(r"(?m)^(leaf_value|internal_value)=(.*)$")


def _scaled_trees(booster: lgb.Booster, scale: float, first_index: int) -> list[str]:
    body = booster.model_to_string().partition("end of trees")[0]
    trees = []
    for number, block in enumerate(_TREE.split(body)[1:]):
        block = re.sub(r"(?m)^Tree=\d+$", f"Tree={first_index + number}", block, count=1)
        block = _VALUES.sub(
            lambda match: (
                match.group(1)
                + "="
                + " ".join(repr(float(value) * scale) for value in match.group(2).split())
            ),
            block,
        )
        trees.append(block.rstrip("\n") + "\n\n")
    return trees


def blend_boosters(first: lgb.Booster, weight: float, second: lgb.Booster) -> lgb.Booster:
    """Give one booster whose raw score is ``weight`` x ``first``'s + (1 - ``weight``) x ``second``'s.

    The header (features, their ranges, objective) is ``first``'s; ``second`` must have been
    trained on the same feature columns.
    """
    if not 0 < weight <= 1:
        raise ValueError(f"a blend weight is in (0, 1], got {weight}")
    if first.feature_name() != second.feature_name():
        raise ValueError("a blend needs two boosters of the same features")
    text = first.model_to_string()
    head = _TREE.split(text.partition("end of trees")[0])[0]
    tail = text.partition("end of trees")[2]
    # The tree sizes index the original trees only; LightGBM reads the trees without them.
    head = re.sub(r"(?m)^tree_sizes=.*\n", "", head)
    trees = _scaled_trees(first, weight, 0)
    if weight < 1:
        trees += _scaled_trees(second, 1 - weight, len(trees))
    return lgb.Booster(
        model_str=head.rstrip("\n") + "\n\n" + "".join(trees) + "end of trees" + tail
    )

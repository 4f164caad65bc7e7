"""Exact TreeSHAP for shallow LightGBM boosters, an order of magnitude faster than ``pred_contrib``.

For a leaf whose root-to-leaf path has ``k`` distinct features, with cover
ratios ``z_j`` (the product of child/parent data counts over that feature's
splits on the path) and "hot" bits ``o_j`` (the row satisfies every split of
feature ``j`` on the path), path-dependent TreeSHAP — what LightGBM's
``pred_contrib`` and ``shap.TreeExplainer`` compute — gives feature ``i``::

    phi_i = (o_i - z_i) * v * sum_{S in F minus i} w(|S|, k) prod_{j in S} o_j prod_{j not in S, j != i} z_j
    w(s, k) = s! (k - s - 1)! / k!

A row enters only through its ``k``-bit pattern ``o``, so the ``2^k * k`` values
of every leaf are tabulated once per model. Scoring evaluates each split of a
tree once, builds each leaf's pattern with bit operations and adds ``k`` table
entries: O(leaves x depth) per tree instead of TreeSHAP's O(leaves x depth^2),
with no per-row allocation, on all cores (numba ``prange``). The same pass gives
the raw score. Splits follow LightGBM's own rules for missing values, zeros and
categorical bitsets, so the values equal ``pred_contrib`` (tested to 1e-9).

The tables grow as ``2^depth``: boosters with more than ``MAX_PATH_FEATURES``
distinct features on a path are refused, and the caller falls back to LightGBM.
Designed and measured in ``benchmarks/shap_candidates.py``.
"""

from __future__ import annotations

import math
from typing import Any

import lightgbm as lgb
import numba as nb
import numpy as np
import pandas as pd

MAX_PATH_FEATURES = 10
MAX_TREE_NODES = 8  # trees with at most this many splits get a whole-tree table (2^8 cases)
_ZERO = 1e-35  # LightGBM's kZeroThreshold
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


#: A node of LightGBM's JSON tree dump (``Booster.dump_model``).
_Node = dict[str, Any]
#: A step of a root-to-leaf path: (internal node, went left, child's data count).
_Step = tuple[int, bool, int]
#: A leaf: (value, data count, its path, the leaf's node).
_Leaf = tuple[float, int, list[_Step], _Node]


class UnsupportedBooster(ValueError):
    """Raised when a booster is too deep (or of a kind) this explainer does not handle."""


def _walk(tree_structure: _Node) -> tuple[list[_Node], list[_Leaf]]:
    """Give the internal nodes and, per leaf, (value, data count, [(node, went left, child count)], node)."""
    internals: list[_Node] = []
    leaves: list[_Leaf] = []
    stack: list[tuple[_Node, list[_Step]]] = [(tree_structure, [])]
    while stack:
        node, path = stack.pop()
        if "split_index" in node:
            index = len(internals)
            internals.append(node)
            for child, left in ((node["left_child"], True), (node["right_child"], False)):
                count = child["internal_count"] if "split_index" in child else child["leaf_count"]
                stack.append((child, [*path, (index, left, count)]))
        else:
            leaves.append((node["leaf_value"], node.get("leaf_count", 0), path, node))
    return internals, leaves


#: :meth:`_Forest.arrays`: the 13 split and tree arrays, in the order the numba kernels take them.
_ForestArrays = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
]  # fmt: skip


def _ints(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


class _Forest:
    """A booster's trees as flat arrays: each split's rule and children, each tree's nodes and leaves.

    Internal nodes are numbered per tree in :func:`_walk`'s order, leaves likewise; a
    child is an internal node (its number) or a leaf (-1 - its number).
    """

    def __init__(self) -> None:
        self.node_feature: list[int] = []
        self.node_threshold: list[float] = []
        self.node_kind: list[int] = []
        self.node_default_left: list[int] = []
        self.node_missing: list[int] = []
        self.node_cat_offset: list[int] = []
        self.node_cat_length: list[int] = []
        self.cat_words: list[int] = []
        self.node_left: list[int] = []
        self.node_right: list[int] = []
        self.tree_node_offset: list[int] = []
        self.tree_nodes: list[int] = []
        self.tree_leaf_offset: list[int] = []
        self.tree_leaves: list[int] = []
        self.leaf_value: list[float] = []

    def add(self, structure: _Node) -> tuple[list[_Node], list[_Leaf]]:
        """Add one tree (its ``tree_structure``); give its internal nodes and leaves as numbered."""
        self.tree_node_offset.append(len(self.node_feature))
        self.tree_leaf_offset.append(len(self.leaf_value))
        if "split_index" not in structure:  # a single leaf
            self.tree_nodes.append(0)
            self.tree_leaves.append(1)
            self.leaf_value.append(structure["leaf_value"])
            return [], [(structure["leaf_value"], structure.get("leaf_count", 0), [], structure)]
        internals, leaves = _walk(structure)
        self.tree_nodes.append(len(internals))
        self.tree_leaves.append(len(leaves))
        for node in internals:
            self.node_feature.append(node["split_feature"])
            self.node_default_left.append(1 if node["default_left"] else 0)
            self.node_missing.append(_MISSING[node["missing_type"]])
            if node["decision_type"] == "==":
                categories = [int(c) for c in str(node["threshold"]).split("||")]
                words = [0] * (max(categories) // 32 + 1)
                for category in categories:
                    words[category // 32] |= 1 << (category % 32)
                self.node_kind.append(1)
                self.node_threshold.append(0.0)
                self.node_cat_offset.append(len(self.cat_words))
                self.node_cat_length.append(len(words))
                self.cat_words.extend(words)
            elif node["decision_type"] == "<=":
                self.node_kind.append(0)
                self.node_threshold.append(float(node["threshold"]))
                self.node_cat_offset.append(0)
                self.node_cat_length.append(0)
            else:
                raise UnsupportedBooster(f"split kind {node['decision_type']!r} is not supported")
        position_of = {id(node): index for index, node in enumerate(internals)}
        leaf_of = {id(leaf[3]): index for index, leaf in enumerate(leaves)}
        for node in internals:
            for side, children in (
                ("left_child", self.node_left),
                ("right_child", self.node_right),
            ):
                child = node[side]
                children.append(
                    position_of[id(child)] if "split_index" in child else -1 - leaf_of[id(child)]
                )
        self.leaf_value.extend(leaf[0] for leaf in leaves)
        return internals, leaves

    def children(self) -> tuple[np.ndarray, np.ndarray]:
        """Give the left and right child of every internal node."""
        return _ints(self.node_left or [0]), _ints(self.node_right or [0])

    def arrays(self) -> _ForestArrays:
        """Give the split and tree arrays in the order the numba kernels take them."""
        return (
            _ints(self.node_feature or [0]),
            _ints(self.node_kind or [0]),
            np.asarray(self.node_threshold or [0.0], dtype=np.float64),
            _ints(self.node_default_left or [0]),
            _ints(self.node_missing or [0]),
            _ints(self.node_cat_offset or [0]),
            _ints(self.node_cat_length or [0]),
            np.asarray(self.cat_words or [0], dtype=np.uint32),
            _ints(self.tree_node_offset),
            _ints(self.tree_nodes),
            _ints(self.tree_leaf_offset),
            _ints(self.tree_leaves),
            np.asarray(self.leaf_value, dtype=np.float64),
        )


class TreeScores:
    """Raw scores of any LightGBM booster, one column per class, by a numba walk of its trees.

    What ``booster.predict(matrix, raw_score=True)`` gives (tested to 1e-12), several
    times faster on many rows of a shallow booster: LightGBM's own predictor pays
    per row and tree for its generality. Multiclass boosters have one tree per class
    and iteration (tree ``i`` belongs to class ``i % classes``).
    """

    def __init__(self, booster: lgb.Booster):
        dump = booster.dump_model()
        self.n_classes: int = dump.get("num_tree_per_iteration", 1)
        forest = _Forest()
        for tree in dump["tree_info"]:
            forest.add(tree["tree_structure"])
        self.n_trees: int = len(dump["tree_info"])
        self._children = forest.children()
        self._arrays = forest.arrays()
        self._stack = max(forest.tree_nodes, default=0) + 1  # a path holds at most every node

    def raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        """Give n x classes raw scores (log-odds for a binary booster, softmax inputs for multiclass)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        out = np.zeros((self.n_classes, matrix.shape[0]), dtype=np.float64)
        for k in range(self.n_classes):
            trees = np.arange(k, self.n_trees, self.n_classes, dtype=np.int32)
            if len(matrix) and len(trees):
                _raw_scores(matrix, out[k], trees, *self._children, *self._arrays)
        return out.T

    def variant_raw_scores(self, shared: np.ndarray, varying: np.ndarray) -> np.ndarray:
        """Give rows x variants x classes raw scores of rows ``shared[r]`` followed by ``varying[r, k]``.

        The features of variant ``k`` of row ``r`` are ``shared[r]`` then ``varying[r, k]`` (rows x
        variants x the remaining features). Equal to :meth:`raw_scores` on every variant's full
        row, without building those rows; each tree is walked once per row and splits the set of
        variants only where it reads a varying feature (at most 63 variants).
        """
        shared = np.ascontiguousarray(shared, dtype=np.float64)
        varying = np.ascontiguousarray(varying, dtype=np.float64)
        rows, width = varying.shape[:2]
        if not 0 < width <= 63 or len(shared) != rows:
            raise ValueError(
                f"need 1 to 63 variants of each of {len(shared)} rows, got {varying.shape}"
            )
        out = np.zeros((self.n_classes, rows, width), dtype=np.float64)
        for k in range(self.n_classes):
            trees = np.arange(k, self.n_trees, self.n_classes, dtype=np.int32)
            if rows and len(trees):
                _variant_raw_scores(
                    shared, varying, out[k], trees, self._stack, *self._children, *self._arrays
                )
        return np.moveaxis(out, 0, -1)


def softmax(raw: np.ndarray) -> np.ndarray:
    """Give the softmax of raw scores over the last axis (a multiclass booster's probabilities)."""
    raw = np.exp(raw - raw.max(axis=-1, keepdims=True))
    probability: np.ndarray = raw / raw.sum(axis=-1, keepdims=True)
    return probability


class FastTreeShap:
    """Exact path-dependent TreeSHAP and raw scores of a binary LightGBM booster.

    Parameters
    ----------
    booster : lightgbm.Booster
        A single-output booster (binary or regression).
    max_path_features : int
        Refuse boosters with more distinct features on one root-to-leaf path.

    Raises
    ------
    UnsupportedBooster
        For multi-output boosters, unknown split kinds or too-deep paths.
    """

    def __init__(self, booster: lgb.Booster, max_path_features: int = MAX_PATH_FEATURES):
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise UnsupportedBooster("multi-output boosters are not supported")
        self.n_features: int = dump["max_feature_idx"] + 1
        forest = _Forest()
        leaf_k: list[int] = []
        leaf_feature_offset: list[int] = []
        leaf_path_offset: list[int] = []
        leaf_path_length: list[int] = []
        leaf_table_offset: list[int] = []
        leaf_z_offset: list[int] = []
        features: list[int] = []
        path_node: list[int] = []
        path_left: list[int] = []
        path_slot: list[int] = []
        zs: list[float] = []
        bias, table_size, max_nodes = 0.0, 0, 1
        for tree in dump["tree_info"]:
            structure = tree["tree_structure"]
            internals, leaves = forest.add(structure)
            if not internals:
                bias += structure["leaf_value"]
                leaf_k.append(0)
                leaf_feature_offset.append(len(features))
                leaf_path_offset.append(len(path_node))
                leaf_path_length.append(0)
                leaf_table_offset.append(table_size)
                leaf_z_offset.append(len(zs))
                continue
            root = structure["internal_count"]
            max_nodes = max(max_nodes, len(internals))
            for value, count, path, _ in leaves:
                bias += value * count / root
                slots: dict[int, int] = {}
                z: list[float] = []
                parent = root
                leaf_path_offset.append(len(path_node))
                for index, left, child_count in path:
                    feature = internals[index]["split_feature"]
                    if feature not in slots:
                        slots[feature] = len(slots)
                        z.append(1.0)
                    z[slots[feature]] *= child_count / parent
                    parent = child_count
                    path_node.append(index)
                    path_left.append(1 if left else 0)
                    path_slot.append(slots[feature])
                k = len(slots)
                if k > max_path_features:
                    raise UnsupportedBooster(
                        f"a leaf has {k} distinct features on its path "
                        f"(at most {max_path_features})"
                    )
                leaf_path_length.append(len(path))
                leaf_k.append(k)
                leaf_feature_offset.append(len(features))
                features.extend(slots)
                leaf_z_offset.append(len(zs))
                zs.extend(z)
                leaf_table_offset.append(table_size)
                table_size += (1 << k) * k

        leaf_value = np.asarray(forest.leaf_value, dtype=np.float64)
        self._arrays = (
            *forest.arrays(),
            _ints(leaf_k),
            _ints(leaf_feature_offset),
            _ints(leaf_path_offset),
            _ints(leaf_path_length),
            np.asarray(leaf_table_offset, dtype=np.int64),
            _ints(features or [0]),
            _ints(path_node or [0]),
            _ints(path_left or [0]),
            _ints(path_slot or [0]),
        )
        self._children = forest.children()
        self._table = np.zeros(max(table_size, 1), dtype=np.float64)
        _build_tables(
            _ints(leaf_k),
            _ints(leaf_z_offset),
            np.asarray(zs or [0.0], dtype=np.float64),
            leaf_value,
            np.asarray(leaf_table_offset, dtype=np.int64),
            self._table,
        )
        self.bias = bias
        self._max_nodes = max_nodes
        self.n_trees: int = len(dump["tree_info"])
        self._tree_arrays = self._tree_tables(
            forest.tree_nodes,
            forest.tree_leaves,
            forest.tree_leaf_offset,
            leaf_k,
            leaf_feature_offset,
            features,
        )
        self.tree_features: list[set[int]] = [
            {node["split_feature"] for node in _walk(tree["tree_structure"])[0]}
            for tree in dump["tree_info"]
        ]

    def _tree_tables(
        self,
        tree_nodes: list[int],
        tree_leaves: list[int],
        tree_leaf_offset: list[int],
        leaf_k: list[int],
        leaf_feature_offset: list[int],
        features: list[int],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Give per-tree tables for small trees: contributions indexed by the tree's decision bits.

        A tree's contributions depend on the row only through the decisions at its
        internal nodes, so a tree with at most ``MAX_TREE_NODES`` of them has at most
        2^nodes cases: tabulated once, a row then costs its decisions and one lookup.
        """
        offsets: list[int] = []
        widths: list[int] = []
        tree_features: list[int] = []
        slots: list[int] = []
        size = 0
        for t in range(len(tree_nodes)):
            distinct: dict[int, int] = {}
            first = tree_leaf_offset[t]
            for leaf in range(first, first + tree_leaves[t]):
                for position in range(leaf_k[leaf]):
                    feature = features[leaf_feature_offset[leaf] + position]
                    distinct.setdefault(feature, len(distinct))
                    slots.append(distinct[feature])
            usable = 0 < tree_nodes[t] <= MAX_TREE_NODES
            offsets.append(len(tree_features))
            widths.append(len(distinct) if usable else -1)
            tree_features.extend(distinct)
            size += (1 << tree_nodes[t]) * len(distinct) if usable else 0
        # slots follow `features` order only for leaves with k > 0, which is the order above
        table_offset = np.zeros(len(tree_nodes), dtype=np.int64)
        running = 0
        for t in range(len(tree_nodes)):
            table_offset[t] = running
            if widths[t] >= 0:
                running += (1 << tree_nodes[t]) * widths[t]
        table = np.zeros(max(size, 1), dtype=np.float64)
        arrays = (
            np.asarray(offsets, dtype=np.int32),
            np.asarray(widths, dtype=np.int32),
            np.asarray(tree_features or [0], dtype=np.int32),
            table_offset,
            table,
        )
        _build_tree_tables(
            np.asarray(slots or [0], dtype=np.int32), *arrays[:4], table, *self._arrays, self._table
        )
        return arrays

    @property
    def table_megabytes(self) -> float:
        """Give the size of the pattern tables."""
        return (self._table.nbytes + self._tree_arrays[-1].nbytes) / 2**20

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Give n x (features + 1) log-odds contributions, the base value last (``pred_contrib``'s layout)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        out = np.zeros((matrix.shape[0], self.n_features + 1), dtype=np.float64)
        if len(matrix):
            _contributions(
                matrix,
                out,
                self.bias,
                self._max_nodes,
                *self._arrays,
                self._table,
                *self._tree_arrays,
            )
        return out

    def raw_score(self, matrix: np.ndarray, trees: np.ndarray | None = None) -> np.ndarray:
        """Give the raw score (log-odds) of each row; with ``trees``, only those trees' sum."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        selected = (
            np.arange(self.n_trees, dtype=np.int32)
            if trees is None
            else np.asarray(trees, dtype=np.int32)
        )
        out = np.zeros(matrix.shape[0], dtype=np.float64)
        if len(matrix) and len(selected):
            _raw_scores(matrix, out, selected, *self._children, *self._arrays[:13])
        return out

    def trees_using(self, feature_indices: set[int]) -> np.ndarray:
        """Give the trees that split on any of ``feature_indices`` (the only ones a change to them moves)."""
        return np.asarray(
            [t for t, used in enumerate(self.tree_features) if used & feature_indices],
            dtype=np.int32,
        )


def distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give (first index of each distinct row, the distinct row of every row) of a float matrix.

    Rows are hashed (64 bits, numba, all cores) and grouped with a hash table, then
    verified bit for bit; on a hash collision it falls back to sorting. Rows equal
    but for NaN payloads are kept apart, which is only ever a missed saving.
    """
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    if len(matrix) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    inverse, uniques = pd.factorize(_row_hashes(matrix))
    first = np.empty(len(uniques), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse) - 1, -1, -1)
    bits = matrix.view(np.uint64)
    if not np.array_equal(bits[first[inverse]], bits):
        keys = bits.view(np.dtype((np.void, 8 * matrix.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1).astype(np.int64)


@nb.njit(parallel=True, cache=True)
def _row_hashes(matrix: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, f = matrix.shape
    out = np.empty(n, dtype=np.uint64)
    bits = matrix.view(np.uint64)
    for r in nb.prange(n):
        h = np.uint64(1469598103934665603)
        for j in range(f):
            h = (h ^ bits[r, j]) * np.uint64(1099511628211)
            h ^= h >> np.uint64(29)
        out[r] = h
    return out


@nb.njit(cache=True)
def _build_tables(
    leaf_k: np.ndarray,
    leaf_z_offset: np.ndarray,
    zs: np.ndarray,
    leaf_value: np.ndarray,
    leaf_table_offset: np.ndarray,
    table: np.ndarray,
) -> None:  # pragma: no cover
    e = np.zeros(64)
    for leaf in range(leaf_k.shape[0]):
        k = leaf_k[leaf]
        if k == 0:
            continue
        z = zs[leaf_z_offset[leaf] : leaf_z_offset[leaf] + k]
        v = leaf_value[leaf]
        base = leaf_table_offset[leaf]
        w = np.empty(k)
        for s in range(k):
            w[s] = math.exp(math.lgamma(s + 1) + math.lgamma(k - s) - math.lgamma(k + 1))
        for pattern in range(1 << k):
            for i in range(k):
                o_i = 1.0 if (pattern >> i) & 1 else 0.0
                e[0] = 1.0
                hot = 0
                cold = 1.0
                for j in range(k):
                    if j == i:
                        continue
                    if (pattern >> j) & 1:
                        hot += 1
                        e[hot] = 0.0
                        for m in range(hot, 0, -1):
                            e[m] += e[m - 1] * z[j]
                    else:
                        cold *= z[j]
                total = 0.0
                for m in range(hot + 1):
                    total += w[hot - m] * e[m]
                table[base + pattern * k + i] = (o_i - z[i]) * v * cold * total


@nb.njit(cache=True)
def _build_tree_tables(
    slots: np.ndarray,
    tree_feature_offset: np.ndarray,
    tree_width: np.ndarray,
    tree_features: np.ndarray,
    tree_table_offset: np.ndarray,
    tree_table: np.ndarray,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    node_missing: np.ndarray,
    node_cat_offset: np.ndarray,
    node_cat_length: np.ndarray,
    cat_words: np.ndarray,
    tree_node_offset: np.ndarray,
    tree_nodes: np.ndarray,
    tree_leaf_offset: np.ndarray,
    tree_leaves: np.ndarray,
    leaf_value: np.ndarray,
    leaf_k: np.ndarray,
    leaf_feature_offset: np.ndarray,
    leaf_path_offset: np.ndarray,
    leaf_path_length: np.ndarray,
    leaf_table_offset: np.ndarray,
    features: np.ndarray,
    path_node: np.ndarray,
    path_left: np.ndarray,
    path_slot: np.ndarray,
    table: np.ndarray,
) -> None:  # pragma: no cover
    for t in range(tree_nodes.shape[0]):
        width = tree_width[t]
        if width < 0:
            continue
        first = tree_leaf_offset[t]
        decision = np.empty(max(tree_nodes[t], 1), dtype=np.uint8)
        for decisions in range(1 << tree_nodes[t]):
            base = tree_table_offset[t] + decisions * width
            for j in range(tree_nodes[t]):
                decision[j] = (decisions >> j) & 1
            for leaf in range(first, first + tree_leaves[t]):
                k = leaf_k[leaf]
                if k == 0:
                    continue
                pattern = _leaf_pattern(
                    leaf,
                    decision,
                    k,
                    leaf_path_offset,
                    leaf_path_length,
                    path_node,
                    path_left,
                    path_slot,
                )
                entry = leaf_table_offset[leaf] + pattern * k
                for position in range(k):
                    tree_table[base + slots[leaf_feature_offset[leaf] + position]] += table[
                        entry + position
                    ]


@nb.njit(inline="always")
def _leaf_pattern(
    leaf: int,
    decision: np.ndarray,
    k: int,
    leaf_path_offset: np.ndarray,
    leaf_path_length: np.ndarray,
    path_node: np.ndarray,
    path_left: np.ndarray,
    path_slot: np.ndarray,
) -> int:  # pragma: no cover
    """Give the bit pattern of the leaf's path features whose decision the row follows (``decision[node]``)."""
    pattern = (1 << k) - 1
    start = leaf_path_offset[leaf]
    for e in range(start, start + leaf_path_length[leaf]):
        if decision[path_node[e]] != path_left[e]:
            pattern &= ~(1 << path_slot[e])
    return pattern


@nb.njit(inline="always")
def _decide(
    fval: float,
    g: int,
    node_kind: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    node_missing: np.ndarray,
    node_cat_offset: np.ndarray,
    node_cat_length: np.ndarray,
    cat_words: np.ndarray,
) -> int:  # pragma: no cover
    """Give 1 when the row goes left at node ``g`` (LightGBM's NumericalDecision / CategoricalDecision)."""
    if node_kind[g] == 0:
        missing = node_missing[g]
        if math.isnan(fval) and missing != 2:
            fval = 0.0
        if (missing == 1 and -_ZERO <= fval <= _ZERO) or (missing == 2 and math.isnan(fval)):
            default_left: int = node_default_left[g]
            return default_left
        return 1 if fval <= node_threshold[g] else 0
    if math.isnan(fval) or fval < 0.0:
        return 0
    category = int(fval)
    word = category >> 5
    if word < node_cat_length[g] and (
        cat_words[node_cat_offset[g] + word] >> np.uint32(category & 31)
    ) & np.uint32(1):
        return 1
    return 0


@nb.njit(parallel=True, cache=True)
def _contributions(
    matrix: np.ndarray,
    out: np.ndarray,
    bias: float,
    max_nodes: int,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    node_missing: np.ndarray,
    node_cat_offset: np.ndarray,
    node_cat_length: np.ndarray,
    cat_words: np.ndarray,
    tree_node_offset: np.ndarray,
    tree_nodes: np.ndarray,
    tree_leaf_offset: np.ndarray,
    tree_leaves: np.ndarray,
    leaf_value: np.ndarray,
    leaf_k: np.ndarray,
    leaf_feature_offset: np.ndarray,
    leaf_path_offset: np.ndarray,
    leaf_path_length: np.ndarray,
    leaf_table_offset: np.ndarray,
    features: np.ndarray,
    path_node: np.ndarray,
    path_left: np.ndarray,
    path_slot: np.ndarray,
    table: np.ndarray,
    tree_feature_offset: np.ndarray,
    tree_width: np.ndarray,
    tree_features: np.ndarray,
    tree_table_offset: np.ndarray,
    tree_table: np.ndarray,
) -> None:  # pragma: no cover
    n = matrix.shape[0]
    n_trees = tree_node_offset.shape[0]
    n_features = matrix.shape[1]
    for r in nb.prange(n):
        decision = np.empty(max_nodes, dtype=np.uint8)
        row = matrix[r]
        o = out[r]
        for t in range(n_trees):
            offset = tree_node_offset[t]
            width = tree_width[t]
            if width >= 0:  # a small tree: one lookup by its decision bits
                bits = 0
                for j in range(tree_nodes[t]):
                    g = offset + j
                    bits |= (
                        _decide(
                            row[node_feature[g]],
                            g,
                            node_kind,
                            node_threshold,
                            node_default_left,
                            node_missing,
                            node_cat_offset,
                            node_cat_length,
                            cat_words,
                        )
                        << j
                    )
                base = tree_table_offset[t] + bits * width
                feature_start = tree_feature_offset[t]
                for s in range(width):
                    o[tree_features[feature_start + s]] += tree_table[base + s]
                continue
            for j in range(tree_nodes[t]):
                g = offset + j
                decision[j] = _decide(
                    row[node_feature[g]],
                    g,
                    node_kind,
                    node_threshold,
                    node_default_left,
                    node_missing,
                    node_cat_offset,
                    node_cat_length,
                    cat_words,
                )
            first = tree_leaf_offset[t]
            for leaf in range(first, first + tree_leaves[t]):
                k = leaf_k[leaf]
                if k == 0:
                    continue
                pattern = _leaf_pattern(
                    leaf,
                    decision,
                    k,
                    leaf_path_offset,
                    leaf_path_length,
                    path_node,
                    path_left,
                    path_slot,
                )
                base = leaf_table_offset[leaf] + pattern * k
                feature_start = leaf_feature_offset[leaf]
                for s in range(k):
                    o[features[feature_start + s]] += table[base + s]
        o[n_features] += bias


@nb.njit(parallel=True, cache=True)
def _raw_scores(
    matrix: np.ndarray,
    out: np.ndarray,
    trees: np.ndarray,
    node_left: np.ndarray,
    node_right: np.ndarray,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    node_missing: np.ndarray,
    node_cat_offset: np.ndarray,
    node_cat_length: np.ndarray,
    cat_words: np.ndarray,
    tree_node_offset: np.ndarray,
    tree_nodes: np.ndarray,
    tree_leaf_offset: np.ndarray,
    tree_leaves: np.ndarray,
    leaf_value: np.ndarray,
) -> None:  # pragma: no cover
    """Sum, per row, the value of the leaf each selected tree sends it to (root-to-leaf walk)."""
    for r in nb.prange(matrix.shape[0]):
        row = matrix[r]
        total = 0.0
        for position in range(trees.shape[0]):
            t = trees[position]
            offset = tree_node_offset[t]
            if tree_nodes[t] == 0:
                total += leaf_value[tree_leaf_offset[t]]
                continue
            node = 0
            while node >= 0:
                g = offset + node
                if _decide(
                    row[node_feature[g]],
                    g,
                    node_kind,
                    node_threshold,
                    node_default_left,
                    node_missing,
                    node_cat_offset,
                    node_cat_length,
                    cat_words,
                ):
                    node = node_left[g]
                else:
                    node = node_right[g]
            total += leaf_value[tree_leaf_offset[t] - 1 - node]
        out[r] = total


@nb.njit(parallel=True, cache=True)
def _variant_raw_scores(
    shared: np.ndarray,
    varying: np.ndarray,
    out: np.ndarray,
    trees: np.ndarray,
    stack_size: int,
    node_left: np.ndarray,
    node_right: np.ndarray,
    node_feature: np.ndarray,
    node_kind: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    node_missing: np.ndarray,
    node_cat_offset: np.ndarray,
    node_cat_length: np.ndarray,
    cat_words: np.ndarray,
    tree_node_offset: np.ndarray,
    tree_nodes: np.ndarray,
    tree_leaf_offset: np.ndarray,
    tree_leaves: np.ndarray,
    leaf_value: np.ndarray,
) -> None:  # pragma: no cover
    """Sum the selected trees for every variant of every row: row ``r``, variant ``k`` is ``shared[r] + varying[r, k]``.

    Each tree is walked once per row with the set of variants (a bit mask) still on the
    path; the set splits only at nodes on a varying feature. ``out`` is rows x variants.
    """
    n_shared = shared.shape[1]
    width = varying.shape[1]
    everyone = (np.int64(1) << width) - 1
    for r in nb.prange(shared.shape[0]):
        stack_node = np.empty(stack_size, dtype=np.int64)
        stack_mask = np.empty(stack_size, dtype=np.int64)
        totals = np.zeros(width)
        for position in range(trees.shape[0]):
            t = trees[position]
            if tree_nodes[t] == 0:
                value = leaf_value[tree_leaf_offset[t]]
                for k in range(width):
                    totals[k] += value
                continue
            offset = tree_node_offset[t]
            stack_node[0], stack_mask[0], top = 0, everyone, 1
            while top > 0:
                top -= 1
                node, mask = stack_node[top], stack_mask[top]
                while node >= 0:
                    g = offset + node
                    feature = node_feature[g]
                    if feature < n_shared:
                        went_left = _decide(
                            shared[r, feature],
                            g,
                            node_kind,
                            node_threshold,
                            node_default_left,
                            node_missing,
                            node_cat_offset,
                            node_cat_length,
                            cat_words,
                        )
                        node = node_left[g] if went_left else node_right[g]
                        continue
                    left = np.int64(0)
                    for k in range(width):
                        if (mask >> k) & 1 and _decide(
                            varying[r, k, feature - n_shared],
                            g,
                            node_kind,
                            node_threshold,
                            node_default_left,
                            node_missing,
                            node_cat_offset,
                            node_cat_length,
                            cat_words,
                        ):
                            left |= np.int64(1) << k
                    right = mask & ~left
                    if left == 0:
                        node = node_right[g]
                    elif right == 0:
                        node = node_left[g]
                    else:  # the variants part: follow the left ones, come back for the right
                        stack_node[top], stack_mask[top] = node_right[g], right
                        top += 1
                        node, mask = node_left[g], left
                value = leaf_value[tree_leaf_offset[t] - 1 - node]
                for k in range(width):
                    if (mask >> k) & 1:
                        totals[k] += value
        for k in range(width):
            out[r, k] = totals[k]

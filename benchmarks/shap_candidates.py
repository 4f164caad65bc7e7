#!/usr/bin/env python
"""Benchmark: exact SHAP explanations for LightGBM win-probability models (issue "Speed").

Target: >= 10x the deals/s of the reference path, LGBMClassifier(n_estimators=300) explained with
shap.TreeExplainer / booster.predict(X, pred_contrib=True), with values equal to LightGBM's
pred_contrib on the same model within 1e-6.

What it measures (all on synthetic deal-like data, see make_deals):
  1. reference: LGBMClassifier(n_estimators=300) + pred_contrib (num_threads) and shap.TreeExplainer
  2. constrained tree shapes (max_depth / num_leaves / n_estimators / learning_rate): holdout Brier,
     AUC, log loss, paired Brier difference vs the reference, and pred_contrib deals/s
  3. de-duplicating identical feature rows before explaining, then scattering back (dedupe cost
     included in the timing)
  4. PyPI candidates: fasttreeshap-fixed (v1/v2), woodelf-explainer, treeshap (Rust) when
     importable, plus an in-file numba kernel ("path tables", TreeSHAP-v2 style, which also
     supports LightGBM categorical splits)
  5. chunking and 2 processes vs 1 process with 2 threads, with peak RSS

Usage (needs numpy pandas lightgbm shap numba scikit-learn; candidates optional):
    python benchmarks/shap_candidates.py --rows 100000 --repeats 3 > results.md

Every timing is the median of --repeats runs, and every ratio is against the reference
measured in the same process run. Timings start from the pandas DataFrame a pipeline would
hold, so pandas->numpy conversion, dedupe and scatter-back are all inside the timed region.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import lightgbm as lgb  # noqa: E402
import numba as nb  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402

# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

N_CAT, N_BOOL, N_NUM, N_CONT = 15, 10, 10, 10


def make_deals(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Deal-like rows: 15 low-cardinality categoricals (2-6 levels), 10 booleans, 10 bounded
    numerics with few distinct values, 10 bounded continuous-ish numerics (rounded, as CRM data
    is). Returns integer-coded frame and the true win probability."""
    mix = np.random.default_rng(12345)  # fixed level frequencies, independent of the row stream
    d: dict[str, np.ndarray] = {}
    for i in range(N_CAT):
        k = 2 + i % 5
        d[f"cat{i:02d}"] = rng.choice(k, size=n, p=mix.dirichlet(np.ones(k) * 2)).astype(np.int8)
    for i in range(N_BOOL):
        d[f"flag{i}"] = (rng.random(n) < 0.15 + 0.07 * i).astype(np.int8)
    for i in range(N_NUM):  # few distinct values: stage index, #contacts, #meetings, ...
        d[f"cnt{i}"] = rng.integers(0, 3 + 2 * i, size=n).astype(np.float64)
    for i in range(N_CONT):  # amounts, days, discount %, all bounded and rounded
        if i < 5:
            d[f"amt{i}"] = np.round(np.minimum(rng.gamma(2.0, 10.0, size=n), 150.0), 1)
        else:
            d[f"pct{i}"] = np.round(rng.beta(2, 3, size=n) * 100, 0)
    X = pd.DataFrame(d)
    z = (
        -0.8
        + 0.7 * (X.cat00 == 1)
        - 0.6 * (X.cat01 == 2)
        + 0.5 * (X.cat02 >= 2) * X.flag0
        + 0.6 * (X.cat03 == 0) * (X.cnt0 >= 1)
        - 0.4 * (X.cat05 == 3)
        + 0.35 * X.cnt1 / 5
        - 0.3 * X.flag3
        + 0.4 * X.flag1 * (X.cnt4 > 5)
        + 0.02 * (X.pct5 - 40)
        - 0.5 * np.log1p(X.amt0) / 3
        + 0.015 * X.amt1 * X.flag2
        - 0.01 * np.maximum(X.amt2 - 40, 0)
        + 0.3 * (X.cat07 == 1) * (X.pct6 > 50)
        + 0.25 * np.sin(X.cnt6)
    ).to_numpy()
    return X, 1.0 / (1.0 + np.exp(-z))


def as_native_categoricals(X: pd.DataFrame) -> pd.DataFrame:
    out = X.copy()
    for c in X.columns:
        if c.startswith("cat"):
            k = 2 + int(c[3:]) % 5
            out[c] = pd.Categorical(X[c], categories=list(range(k)))
    return out


def to_matrix(df: pd.DataFrame, booster: lgb.Booster) -> np.ndarray:
    """pandas -> float64 matrix exactly as LightGBM's predict sees it (category -> code, -1 -> NaN)."""
    cats = booster.pandas_categorical or []
    out = np.empty((len(df), df.shape[1]), dtype=np.float64)
    ci = 0
    for j, c in enumerate(df.columns):
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            if list(s.cat.categories) != list(cats[ci]):
                s = s.cat.set_categories(cats[ci])
            ci += 1
            codes = s.cat.codes.to_numpy()
            out[:, j] = codes
            out[codes < 0, j] = np.nan
        else:
            out[:, j] = s.to_numpy(dtype=np.float64)
    return out


# ----------------------------------------------------------------------------------------------
# dedupe
# ----------------------------------------------------------------------------------------------


def dedupe_hash(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(first_index_of_each_unique_row, inverse) via 64-bit row hashes + factorize, verified
    exactly (a hash collision would be detected and fall back to np.unique)."""
    h = pd.util.hash_pandas_object(df, index=False).to_numpy()
    inv, uniq = pd.factorize(h)
    first = np.empty(len(uniq), dtype=np.int64)
    first[inv[::-1]] = np.arange(len(inv) - 1, -1, -1)
    # exact verification: every row equals the representative of its group
    for c in df.columns:
        col = df[c]
        v = col.cat.codes.to_numpy() if isinstance(col.dtype, pd.CategoricalDtype) else col.to_numpy()
        if not np.array_equal(v[first[inv]], v, equal_nan=v.dtype.kind == "f"):
            return dedupe_unique(to_plain_matrix(df))
    return first, inv


def to_plain_matrix(df: pd.DataFrame) -> np.ndarray:
    cols = [
        df[c].cat.codes.to_numpy().astype(np.float64)
        if isinstance(df[c].dtype, pd.CategoricalDtype)
        else df[c].to_numpy(dtype=np.float64)
        for c in df.columns
    ]
    return np.column_stack(cols)


def dedupe_unique(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first_index, inverse) via np.unique(axis=0) on the numeric matrix."""
    _, first, inv = np.unique(M, axis=0, return_index=True, return_inverse=True)
    return first, inv.reshape(-1)


@nb.njit(parallel=True, cache=False)
def _row_hash(M):  # pragma: no cover
    n, f = M.shape
    out = np.empty(n, dtype=np.uint64)
    u = M.view(np.uint64)
    for r in nb.prange(n):
        h = np.uint64(1469598103934665603)
        for j in range(f):
            h = (h ^ u[r, j]) * np.uint64(1099511628211)
            h ^= h >> np.uint64(29)
        out[r] = h
    return out


def dedupe_matrix(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first_index, inverse) for rows of a float64 matrix via a numba row hash + factorize,
    verified exactly (falls back to np.unique on a collision). NaN payloads are compared bitwise."""
    M = np.ascontiguousarray(M, dtype=np.float64)
    inv, uniq = pd.factorize(_row_hash(M))
    first = np.empty(len(uniq), dtype=np.int64)
    first[inv[::-1]] = np.arange(len(inv) - 1, -1, -1)
    u = M.view(np.uint64)
    if not np.array_equal(u[first[inv]], u):
        return dedupe_unique(M)
    return first, inv


def with_dedupe(explain: Callable[[pd.DataFrame], np.ndarray]) -> Callable[[pd.DataFrame], np.ndarray]:
    def run(df: pd.DataFrame) -> np.ndarray:
        first, inv = dedupe_hash(df)
        return explain(df.iloc[first])[inv]

    return run


# ----------------------------------------------------------------------------------------------
# own kernel: exact path-dependent TreeSHAP with per-leaf pattern tables (TreeSHAP "v2" idea)
# ----------------------------------------------------------------------------------------------
#
# For a leaf whose root->leaf path has k distinct features with cover ratios z_j (product of
# child_count/parent_count over that feature's splits on the path) and "hot" bits o_j (the row
# satisfies every split of feature j on the path), path-dependent TreeSHAP gives feature i
#   phi_i = (o_i - z_i) * v * sum_{S subset of F\{i}} w(|S|,k) prod_{j in S} o_j prod_{j not in S, j!=i} z_j
# with w(s,k) = s!(k-s-1)!/k!. This depends on the row only through the k-bit pattern o, so all
# 2^k * k values are tabulated once per model. Scoring evaluates every split of a tree once,
# builds each leaf's pattern with bit operations and adds k table entries: O(L*D) per tree instead
# of TreeSHAP's O(L*D^2). Memory is sum over leaves of 2^k*k doubles: tiny for depth <= 5, too
# large / slow for the unbounded-depth reference (k up to ~15); then it raises.

K_ZERO = 1e-35


def _walk(tree_structure: dict) -> tuple[list[dict], list[tuple[float, int, list]]]:
    internals: list[dict] = []
    leaves: list[tuple[float, int, list]] = []
    stack = [(tree_structure, [])]
    while stack:
        node, path = stack.pop()
        if "split_index" in node:
            idx = len(internals)
            internals.append(node)
            for child, left in ((node["left_child"], True), (node["right_child"], False)):
                cc = child["internal_count"] if "split_index" in child else child["leaf_count"]
                stack.append((child, [*path, (idx, left, cc)]))
        else:
            leaves.append((node["leaf_value"], node.get("leaf_count", 0), path))
    return internals, leaves


class PathTableSHAP:
    """Exact TreeSHAP (== LightGBM pred_contrib) for a binary/regression LightGBM booster."""

    def __init__(self, booster: lgb.Booster, max_k: int = 12, max_table_mb: float = 1024.0):
        self.booster = booster
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise NotImplementedError("multiclass")
        self.n_features = dump["max_feature_idx"] + 1
        nf, nthr, nkind, ndefl, nmiss, ncoff, nclen = ([] for _ in range(7))
        cat_words: list[int] = []
        t_noff, t_nn, t_loff, t_nl = [], [], [], []
        l_val, l_k, l_foff, l_poff, l_plen, l_toff, l_zoff = ([] for _ in range(7))
        feats, p_node, p_left, p_slot, zs = [], [], [], [], []
        bias, tab, max_nodes = 0.0, 0, 1
        for t in dump["tree_info"]:
            ts = t["tree_structure"]
            t_noff.append(len(nf))
            t_loff.append(len(l_val))
            if "split_index" not in ts:
                bias += ts["leaf_value"]
                t_nn.append(0)
                t_nl.append(0)
                continue
            internals, leaves = _walk(ts)
            root = ts["internal_count"]
            t_nn.append(len(internals))
            t_nl.append(len(leaves))
            max_nodes = max(max_nodes, len(internals))
            for nd in internals:
                nf.append(nd["split_feature"])
                ndefl.append(1 if nd["default_left"] else 0)
                nmiss.append({"None": 0, "Zero": 1, "NaN": 2}[nd["missing_type"]])
                if nd["decision_type"] == "==":
                    cats = [int(c) for c in str(nd["threshold"]).split("||")]
                    words = [0] * (max(cats) // 32 + 1)
                    for c in cats:
                        words[c // 32] |= 1 << (c % 32)
                    nkind.append(1)
                    nthr.append(0.0)
                    ncoff.append(len(cat_words))
                    nclen.append(len(words))
                    cat_words.extend(words)
                elif nd["decision_type"] == "<=":
                    nkind.append(0)
                    nthr.append(float(nd["threshold"]))
                    ncoff.append(0)
                    nclen.append(0)
                else:
                    raise NotImplementedError(nd["decision_type"])
            for value, count, path in leaves:
                bias += value * count / root
                slots: dict[int, int] = {}
                zprod: list[float] = []
                parent = root
                l_poff.append(len(p_node))
                for idx, left, cc in path:
                    f = internals[idx]["split_feature"]
                    if f not in slots:
                        slots[f] = len(slots)
                        zprod.append(1.0)
                    zprod[slots[f]] *= cc / parent
                    parent = cc
                    p_node.append(idx)
                    p_left.append(1 if left else 0)
                    p_slot.append(slots[f])
                k = len(slots)
                if k > max_k:
                    raise ValueError(f"a leaf has {k} distinct path features > max_k={max_k}")
                l_plen.append(len(path))
                l_val.append(value)
                l_k.append(k)
                l_foff.append(len(feats))
                feats.extend(slots.keys())
                l_zoff.append(len(zs))
                zs.extend(zprod)
                l_toff.append(tab)
                tab += (1 << k) * k
        self.table_mb = tab * 8 / 2**20
        if self.table_mb > max_table_mb:
            raise MemoryError(f"pattern tables would need {self.table_mb:.0f} MB")
        i32 = lambda a: np.asarray(a, dtype=np.int32)  # noqa: E731
        self.arrays = (
            i32(nf), i32(nkind), np.asarray(nthr, dtype=np.float64), i32(ndefl), i32(nmiss),
            i32(ncoff), i32(nclen), np.asarray(cat_words or [0], dtype=np.uint32),
            i32(t_noff), i32(t_nn), i32(t_loff), i32(t_nl),
            i32(l_k), i32(l_foff), i32(l_poff), i32(l_plen), np.asarray(l_toff, dtype=np.int64),
            i32(feats), i32(p_node), i32(p_left), i32(p_slot),
        )
        self.table = np.zeros(max(tab, 1), dtype=np.float64)
        _pt_build_tables(i32(l_k), i32(l_zoff), np.asarray(zs, dtype=np.float64),
                         np.asarray(l_val, dtype=np.float64), np.asarray(l_toff, dtype=np.int64),
                         self.table)
        self.bias = bias
        self.max_nodes = max_nodes

    def contrib_matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.zeros((X.shape[0], self.n_features + 1), dtype=np.float64)
        _pt_score(X, out, self.bias, self.max_nodes, *self.arrays, self.table)
        return out

    def contrib(self, df: pd.DataFrame) -> np.ndarray:
        """Same layout as booster.predict(df, pred_contrib=True): (n, n_features + 1)."""
        return self.contrib_matrix(to_matrix(df, self.booster))

    def contrib_dedupe(self, df: pd.DataFrame) -> np.ndarray:
        """contrib() for the distinct rows only, scattered back to every row."""
        M = to_matrix(df, self.booster)
        first, inv = dedupe_matrix(M)
        return self.contrib_matrix(M[first])[inv]


@nb.njit(cache=False)
def _pt_build_tables(leaf_k, leaf_z_off, zs, leaf_val, leaf_tab_off, table):  # pragma: no cover
    e = np.zeros(64)
    for leaf in range(leaf_k.shape[0]):
        k = leaf_k[leaf]
        if k == 0:
            continue
        z = zs[leaf_z_off[leaf]: leaf_z_off[leaf] + k]
        v = leaf_val[leaf]
        base = leaf_tab_off[leaf]
        w = np.empty(k)
        for s in range(k):
            w[s] = math.exp(math.lgamma(s + 1) + math.lgamma(k - s) - math.lgamma(k + 1))
        for p in range(1 << k):
            for i in range(k):
                o_i = 1.0 if (p >> i) & 1 else 0.0
                e[0] = 1.0
                n_h = 0
                prod_cold = 1.0
                for j in range(k):
                    if j == i:
                        continue
                    if (p >> j) & 1:
                        n_h += 1
                        e[n_h] = 0.0
                        for m in range(n_h, 0, -1):
                            e[m] += e[m - 1] * z[j]
                    else:
                        prod_cold *= z[j]
                acc = 0.0
                for m in range(n_h + 1):
                    acc += w[n_h - m] * e[m]
                table[base + p * k + i] = (o_i - z[i]) * v * prod_cold * acc


@nb.njit(parallel=True, cache=False)
def _pt_score(X, out, bias, max_nodes, node_feat, node_kind, node_thr, node_defl, node_miss,
              node_cat_off, node_cat_len, cat_words, tree_node_off, tree_n_nodes, tree_leaf_off,
              tree_n_leaves, leaf_k, leaf_feat_off, leaf_path_off, leaf_path_len, leaf_tab_off,
              feats, path_node, path_left, path_slot, table):  # pragma: no cover
    n = X.shape[0]
    n_trees = tree_node_off.shape[0]
    nf = X.shape[1]
    for r in nb.prange(n):
        dec = np.empty(max_nodes, dtype=np.uint8)
        row = X[r]
        o = out[r]
        for t in range(n_trees):
            off = tree_node_off[t]
            for j in range(tree_n_nodes[t]):
                g = off + j
                fval = row[node_feat[g]]
                if node_kind[g] == 0:  # LightGBM NumericalDecision
                    miss = node_miss[g]
                    if math.isnan(fval) and miss != 2:
                        fval = 0.0
                    if (miss == 1 and -K_ZERO <= fval <= K_ZERO) or (miss == 2 and math.isnan(fval)):
                        dec[j] = node_defl[g]
                    else:
                        dec[j] = 1 if fval <= node_thr[g] else 0
                else:  # LightGBM CategoricalDecision (bitset)
                    if math.isnan(fval) or fval < 0.0:
                        dec[j] = 0
                    else:
                        c = int(fval)
                        wi = c >> 5
                        if wi < node_cat_len[g] and (
                            (cat_words[node_cat_off[g] + wi] >> np.uint32(c & 31)) & np.uint32(1)
                        ):
                            dec[j] = 1
                        else:
                            dec[j] = 0
            lo = tree_leaf_off[t]
            for leaf in range(lo, lo + tree_n_leaves[t]):
                k = leaf_k[leaf]
                if k == 0:
                    continue
                p = (1 << k) - 1
                po = leaf_path_off[leaf]
                for e in range(po, po + leaf_path_len[leaf]):
                    if dec[path_node[e]] != path_left[e]:
                        p &= ~(1 << path_slot[e])
                base = leaf_tab_off[leaf] + p * k
                fo = leaf_feat_off[leaf]
                for s in range(k):
                    o[feats[fo + s]] += table[base + s]
        o[nf] += bias


# ----------------------------------------------------------------------------------------------
# measurement helpers
# ----------------------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Timing:
    times: list[float] = field(default_factory=list)
    peak_extra_mb: float = float("nan")
    result: np.ndarray | None = None


def time_it(fn: Callable[[], np.ndarray], repeats: int, keep: bool = True) -> Timing:
    t = Timing()
    for _ in range(repeats):
        gc.collect()
        base = rss_mb()
        reset_peak()
        t0 = time.perf_counter()
        res = fn()
        t.times.append(time.perf_counter() - t0)
        t.peak_extra_mb = max(0.0 if math.isnan(t.peak_extra_mb) else t.peak_extra_mb, peak_mb() - base)
        if keep and t.result is None:
            t.result = res
        del res
    return t


def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a)
    if a.ndim == 3:  # shap list-style (2, n, F) or (n, F, 2) outputs
        a = a[1] if a.shape[0] == 2 else a[..., 1]
    cols = min(a.shape[1], b.shape[1])
    return float(np.max(np.abs(a[:, :cols] - b[:, :cols])))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# model shapes
# ----------------------------------------------------------------------------------------------

SHAPES: dict[str, dict] = {
    "ref_n300": dict(n_estimators=300),  # LGBMClassifier(n_estimators=300): 31 leaves, no depth cap
    "d5_l15_n150": dict(max_depth=5, num_leaves=15, n_estimators=150),
    "d4_l15_n200": dict(max_depth=4, num_leaves=15, n_estimators=200),
    "d4_l15_n100_lr0.2": dict(max_depth=4, num_leaves=15, n_estimators=100, learning_rate=0.2),
    "d3_l8_n300": dict(max_depth=3, num_leaves=8, n_estimators=300),
    "d3_l8_n150_lr0.2": dict(max_depth=3, num_leaves=8, n_estimators=150, learning_rate=0.2),
}


def tree_stats(booster: lgb.Booster) -> tuple[int, float]:
    df = booster.trees_to_dataframe()
    leaves = df[df.left_child.isna()]
    return int(df.node_depth.max()) - 1, float(leaves.node_depth.mean() - 1)


# ----------------------------------------------------------------------------------------------
# multi-process helper (fork): each worker explains a slice with 1 thread
# ----------------------------------------------------------------------------------------------

_MP_STATE: dict = {}


def _mp_worker(bounds: tuple[int, int]) -> tuple[np.ndarray, float]:
    lo, hi = bounds
    b, df = _MP_STATE["booster"], _MP_STATE["df"]
    out = b.predict(df.iloc[lo:hi], pred_contrib=True, num_threads=1)
    return out, peak_mb()


def pred_contrib_processes(booster: lgb.Booster, df: pd.DataFrame, n_proc: int) -> tuple[np.ndarray, float]:
    _MP_STATE["booster"], _MP_STATE["df"] = booster, df
    edges = np.linspace(0, len(df), n_proc + 1).astype(int)
    ctx = mp.get_context("fork")
    with ctx.Pool(n_proc) as pool:
        parts = pool.map(_mp_worker, list(zip(edges[:-1], edges[1:], strict=True)))
    return np.vstack([p[0] for p in parts]), max(p[1] for p in parts)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------


def fmt(x: float, nd: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:,.{nd}f}"


def fmt_e(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.1e}"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod, name in [("numpy", "numpy"), ("pandas", "pandas"), ("lightgbm", "lightgbm"),
                      ("shap", "shap"), ("numba", "numba"), ("sklearn", "scikit-learn"),
                      ("fasttreeshap_fixed", "fasttreeshap-fixed"), ("woodelf", "woodelf-explainer"),
                      ("treeshap", "treeshap")]:
        try:
            from importlib.metadata import version

            out[name] = version(name)
            importlib.import_module(mod)
        except Exception as ex:  # noqa: BLE001
            out[name] = f"not importable ({type(ex).__name__})"
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:  # noqa: C901, PLR0912, PLR0915
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="rows per scoring set")
    ap.add_argument("--pool", type=int, default=30_000, help="distinct rows the duplicated set draws from")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train", type=int, default=20_000)
    ap.add_argument("--holdout", type=int, default=20_000)
    ap.add_argument("--ref-rows", type=int, default=5_000,
                    help="rows used to time the *non-deduplicated* reference-shape paths (their cost "
                         "is linear in rows, so deals/s does not depend on this; keeps the run short)")
    ap.add_argument("--shape-rows", type=int, default=20_000,
                    help="rows used for the per-shape pred_contrib deals/s survey")
    ap.add_argument("--full", nargs="*", default=["d3_l8_n300:cat,int", "d4_l15_n200:cat"],
                    help="SHAPE:ENC[,ENC] entries that get the full method matrix on both full sets; "
                         "the first entry's cat encoding also gets the chunking/process block")
    ap.add_argument("--probe-rows", type=int, default=2_000,
                    help="rows for the reference re-measurement before each block")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["full", "confirm"], default="full",
                    help="confirm: only the interleaved A/B rounds (reference re-timed inside every round)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds for --mode confirm")
    args = ap.parse_args()
    if args.mode == "confirm":
        confirm(args)
        return

    nthreads = args.threads
    nb.set_num_threads(nthreads)
    rng = np.random.default_rng(args.seed)
    t_start = time.time()

    # ---------------- data
    Xall, pall = make_deals(args.train + args.holdout, rng)
    yall = (rng.random(len(Xall)) < pall).astype(int)
    # time-like split: the last --holdout rows (generated after the training rows) are held out
    Xtr, ytr = Xall.iloc[: args.train], yall[: args.train]
    Xho, yho, pho = Xall.iloc[args.train:], yall[args.train:], pall[args.train:]
    pool, _ = make_deals(args.pool, rng)
    pool = pool.drop_duplicates(ignore_index=True)
    Xdup = pool.iloc[rng.integers(0, len(pool), size=args.rows)].reset_index(drop=True)
    Xdist, _ = make_deals(int(args.rows * 1.05) + 100, rng)
    Xdist = Xdist.drop_duplicates(ignore_index=True).iloc[: args.rows].reset_index(drop=True)
    n_unique_dup = len(Xdup.drop_duplicates())
    sets_int = {"dup": Xdup, "distinct": Xdist}
    sets = {
        "int": sets_int,
        "cat": {k: as_native_categoricals(v) for k, v in sets_int.items()},
    }
    train = {"int": Xtr, "cat": as_native_categoricals(Xtr)}
    hold = {"int": Xho, "cat": as_native_categoricals(Xho)}
    log(f"data ready: dup set {len(Xdup)} rows / {n_unique_dup} unique; distinct set {len(Xdist)} rows")

    # ---------------- 2. train shapes and holdout skill
    models: dict[tuple[str, str], lgb.LGBMClassifier] = {}
    skill_rows = []
    brier_oracle = float(np.mean((pho - yho) ** 2))
    for enc in ("cat", "int"):
        ref_sq = None
        for name, params in SHAPES.items():
            t0 = time.perf_counter()
            m = lgb.LGBMClassifier(verbose=-1, random_state=args.seed, n_jobs=nthreads, **params)
            m.fit(train[enc], ytr)
            fit_s = time.perf_counter() - t0
            models[(name, enc)] = m
            p = m.predict_proba(hold[enc])[:, 1]
            sq = (p - yho) ** 2
            if name == "ref_n300":
                ref_sq = sq
            d = sq - ref_sq
            depth, mdepth = tree_stats(m.booster_)
            skill_rows.append(dict(
                shape=name, enc=enc, trees=m.booster_.num_trees(), depth=depth, mean_leaf_depth=mdepth,
                brier=float(sq.mean()), dbrier=float(d.mean()), dbrier_se=float(d.std(ddof=1) / math.sqrt(len(d))),
                auc=float(roc_auc_score(yho, p)), logloss=float(log_loss(yho, p)), fit_s=fit_s,
            ))
            log(f"trained {name}/{enc} in {fit_s:.1f}s brier={sq.mean():.5f}")

    results: list[dict] = []

    def record(model: str, enc: str, setname: str, method: str, tm: Timing, rows: int, ref_out: np.ndarray | None,
               note: str = "") -> None:
        med = statistics.median(tm.times)
        results.append(dict(model=model, enc=enc, set=setname, method=method, rows=rows, median_s=med,
                            ref_local=cur_ref.get(enc, float("nan")),
                            dps=rows / med, dps_min=rows / max(tm.times), dps_max=rows / min(tm.times),
                            maxdiff=maxdiff(tm.result, ref_out) if (ref_out is not None and tm.result is not None) else float("nan"),
                            peak_mb=tm.peak_extra_mb, note=note))
        log(f"  {model}/{enc}/{setname}/{method}: {rows / med:,.0f} deals/s, maxdiff={results[-1]['maxdiff']:.1e}")

    def pc(b: lgb.Booster, threads: int = nthreads) -> Callable[[pd.DataFrame], np.ndarray]:
        return lambda df: b.predict(df, pred_contrib=True, num_threads=threads)

    R = args.repeats
    probe_log: list[tuple[str, str, float]] = []
    cur_ref: dict[str, float] = {}

    def probe(enc: str, where: str) -> None:
        """Re-measure the reference (ref_n300 + pred_contrib) right before a block, so each ratio is
        against a baseline taken minutes (not tens of minutes) apart on this shared, noisy machine."""
        b = models[("ref_n300", enc)].booster_
        sub = sets[enc]["distinct"].iloc[: args.probe_rows]
        tm = time_it(lambda: pc(b)(sub), R, keep=False)
        cur_ref[enc] = len(sub) / statistics.median(tm.times)
        probe_log.append((where, enc, cur_ref[enc]))
        log(f"probe {where}/{enc}: reference {cur_ref[enc]:,.0f} deals/s")

    # warm the numba kernels (compile outside the timed region)
    _warm = PathTableSHAP(models[("d3_l8_n300", "cat")].booster_)
    _warm.contrib_dedupe(sets["cat"]["dup"].iloc[:100])
    # ---------------- 1. reference
    fts = None
    try:
        fts = importlib.import_module("fasttreeshap_fixed")
    except Exception:  # noqa: BLE001
        pass
    woodelf = None
    try:
        woodelf = importlib.import_module("woodelf")
    except Exception:  # noqa: BLE001
        pass
    import shap

    cand_notes: list[str] = []
    for enc in ("cat", "int"):
        m = models[("ref_n300", enc)]
        b = m.booster_
        sub = sets[enc]["distinct"].iloc[: args.ref_rows]
        tm = time_it(lambda: pc(b)(sub), R)
        ref_sub = tm.result
        cur_ref[enc] = len(sub) / statistics.median(tm.times)
        probe_log.append(("reference block", enc, cur_ref[enc]))
        record("ref_n300", enc, "distinct", f"pred_contrib (num_threads={nthreads})", tm, len(sub), ref_sub)
        t0 = time.perf_counter()
        te = shap.TreeExplainer(m)
        te_init = time.perf_counter() - t0
        tm = time_it(lambda: te.shap_values(sub), R)
        record("ref_n300", enc, "distinct", "shap.TreeExplainer.shap_values", tm, len(sub), ref_sub,
               note=f"explainer init {te_init:.2f}s not included")
        if enc == "cat":  # dedupe on the duplicated set (full size; int encoding behaves the same)
            dup = sets[enc]["dup"]
            tm = time_it(lambda: with_dedupe(pc(b))(dup), R)
            record("ref_n300", enc, "dup", "dedupe + pred_contrib", tm, len(dup), None,
                   note=f"{n_unique_dup} unique rows explained; diff checked on a slice")
            # exactness of dedupe: compare on a slice against direct pred_contrib
            sl = dup.iloc[: args.ref_rows]
            results[-1]["maxdiff"] = maxdiff(with_dedupe(pc(b))(sl), pc(b)(sl))
        # own kernel on the unbounded reference shape (expected: too deep for pattern tables)
        try:
            t0 = time.perf_counter()
            pt = PathTableSHAP(b, max_k=14, max_table_mb=1024)
            build = time.perf_counter() - t0
            tm = time_it(lambda: pt.contrib(sub), R)
            record("ref_n300", enc, "distinct", "numba path-tables", tm, len(sub), ref_sub,
                   note=f"tables {pt.table_mb:.0f} MB, build {build:.1f}s")
            del pt
        except (ValueError, MemoryError) as ex:
            cand_notes.append(f"numba path-tables on ref_n300/{enc}: refused ({ex})")
            log(cand_notes[-1])
        if enc == "int" and fts is not None:
            for alg in ("v1", "v2"):
                e = fts.TreeExplainer(m, algorithm=alg, n_jobs=nthreads)
                tm = time_it(lambda e=e: e.shap_values(sub, check_additivity=False), R)
                record("ref_n300", enc, "distinct", f"fasttreeshap-fixed {alg} (n_jobs={nthreads})", tm, len(sub), ref_sub)
        if enc == "cat" and fts is not None:
            for alg in ("v1", "v2", "auto"):
                try:
                    e = fts.TreeExplainer(m, algorithm=alg, n_jobs=nthreads)
                    r = e.shap_values(sub.iloc[:200], check_additivity=False)
                    cand_notes.append(f"fasttreeshap-fixed {alg} on native-categorical model: ran, model.trees is "
                                      f"{'None -> delegated to LightGBM pred_contrib' if e.model.trees is None else 'parsed'}; "
                                      f"maxdiff {maxdiff(r, ref_sub[:200]):.1e}")
                except Exception as ex:  # noqa: BLE001
                    cand_notes.append(f"fasttreeshap-fixed {alg} on native-categorical model: {type(ex).__name__}: {ex}")
                log(cand_notes[-1])
        if woodelf is not None:
            try:
                we = woodelf.WoodelfExplainer(m)
                s2 = sub.iloc[:1000]
                tm = time_it(lambda we=we, s2=s2: we.shap_values(s2, verbose=False), R)
                record("ref_n300", enc, "distinct", "woodelf-explainer (path-dependent)", tm, len(s2), ref_sub[:1000])
            except Exception as ex:  # noqa: BLE001
                cand_notes.append(f"woodelf-explainer on ref_n300/{enc}: {type(ex).__name__}: {ex}")
                log(cand_notes[-1])
        gc.collect()

    ref_dps = {enc: next(r["dps"] for r in results if r["model"] == "ref_n300" and r["enc"] == enc
                         and r["method"].startswith("pred_contrib")) for enc in ("cat", "int")}

    # ---------------- 2b. pred_contrib deals/s per shape (slice of the distinct set)
    for enc in ("cat", "int"):
        probe(enc, "shape survey")
        for name in SHAPES:
            if name == "ref_n300":
                continue
            b = models[(name, enc)].booster_
            sub = sets[enc]["distinct"].iloc[: args.shape_rows]
            tm = time_it(lambda b=b, sub=sub: pc(b)(sub), R, keep=False)
            record(name, enc, "distinct", f"pred_contrib (num_threads={nthreads})", tm, len(sub), None)

    # ---------------- 3/4. full method matrix for selected shapes on both full sets
    full = [(tok.split(":")[0], tok.split(":")[1].split(",") if ":" in tok else ["cat", "int"]) for tok in args.full]
    for name, encs in full:
        for enc in encs:
            m = models[(name, enc)]
            b = m.booster_
            t0 = time.perf_counter()
            pt = PathTableSHAP(b)
            pt_build = time.perf_counter() - t0
            fe = fts.TreeExplainer(m, algorithm="v2", n_jobs=nthreads) if (fts is not None and enc == "int") else None
            for setname in ("dup", "distinct"):
                probe(enc, f"{name}/{setname}")
                df = sets[enc][setname]
                tm = time_it(lambda b=b, df=df: pc(b)(df), R)
                ref_out = tm.result
                record(name, enc, setname, f"pred_contrib (num_threads={nthreads})", tm, len(df), ref_out)
                tm = time_it(lambda b=b, df=df: with_dedupe(pc(b))(df), R)
                record(name, enc, setname, "dedupe + pred_contrib", tm, len(df), ref_out)
                tm = time_it(lambda pt=pt, df=df: pt.contrib(df), R)
                record(name, enc, setname, "numba path-tables", tm, len(df), ref_out,
                       note=f"tables {pt.table_mb:.1f} MB, build {pt_build:.2f}s (not timed)")
                tm = time_it(lambda pt=pt, df=df: pt.contrib_dedupe(df), R)
                record(name, enc, setname, "dedupe + numba path-tables", tm, len(df), ref_out,
                       note="dedupe on the float64 matrix (numba row hash + exact check)")
                if fe is not None:
                    tm = time_it(lambda fe=fe, df=df: fe.shap_values(df, check_additivity=False), R)
                    record(name, enc, setname, f"fasttreeshap-fixed v2 (n_jobs={nthreads})", tm, len(df), ref_out)
                    tm = time_it(lambda fe=fe, df=df: with_dedupe(
                        lambda d: np.asarray(fe.shap_values(d, check_additivity=False)))(df), R)
                    record(name, enc, setname, "dedupe + fasttreeshap-fixed v2", tm, len(df), ref_out)
                if woodelf is not None and enc == "int" and setname == "distinct":
                    try:
                        we = woodelf.WoodelfExplainer(m)
                        s2 = df.iloc[: args.ref_rows]
                        tm = time_it(lambda we=we, s2=s2: we.shap_values(s2, verbose=False), R)
                        record(name, enc, setname, "woodelf-explainer (path-dependent)", tm, len(s2), ref_out[: len(s2)])
                    except Exception as ex:  # noqa: BLE001
                        cand_notes.append(f"woodelf-explainer on {name}/{enc}: {type(ex).__name__}: {ex}")
                if woodelf is not None and enc == "cat" and setname == "distinct":
                    try:
                        woodelf.WoodelfExplainer(m).shap_values(df.iloc[:100], verbose=False)
                    except Exception as ex:  # noqa: BLE001
                        cand_notes.append(f"woodelf-explainer on {name}/cat: {type(ex).__name__}: {ex}")
                if fts is not None and enc == "int" and setname == "distinct":
                    # does n_jobs matter?
                    fe1 = fts.TreeExplainer(m, algorithm="v2", n_jobs=1)
                    tm = time_it(lambda fe1=fe1, df=df: fe1.shap_values(df, check_additivity=False), R)
                    record(name, enc, setname, "fasttreeshap-fixed v2 (n_jobs=1)", tm, len(df), ref_out)
                if name == full[0][0] and setname == "distinct" and enc == "cat":
                    # ---------------- 5. chunking / processes / threads
                    for chunk in (50_000, 10_000):
                        tm = time_it(lambda b=b, df=df, chunk=chunk: np.vstack([
                            pc(b)(df.iloc[i:i + chunk]) for i in range(0, len(df), chunk)]), R)
                        record(name, enc, setname, f"pred_contrib chunks of {chunk:,}", tm, len(df), ref_out)
                    tm = time_it(lambda b=b, df=df: pc(b, 1)(df), R)
                    record(name, enc, setname, "pred_contrib (num_threads=1)", tm, len(df), ref_out)
                    worker_peaks = []

                    def two_proc(b=b, df=df):
                        out, pk = pred_contrib_processes(b, df, 2)
                        worker_peaks.append(pk)
                        return out

                    tm = time_it(two_proc, R)
                    record(name, enc, setname, "2 processes x pred_contrib(num_threads=1)", tm, len(df), ref_out,
                           note=f"peak RSS column is the parent only; worker VmHWM {max(worker_peaks):.0f} MB each (includes forked parent pages)")
                    for chunk in (50_000, 10_000):
                        tm = time_it(lambda pt=pt, df=df, chunk=chunk: np.vstack([
                            pt.contrib(df.iloc[i:i + chunk]) for i in range(0, len(df), chunk)]), R)
                        record(name, enc, setname, f"numba path-tables chunks of {chunk:,}", tm, len(df), ref_out)
                    nb.set_num_threads(1)
                    tm = time_it(lambda pt=pt, df=df: pt.contrib(df), R)
                    nb.set_num_threads(nthreads)
                    record(name, enc, setname, "numba path-tables (1 thread)", tm, len(df), ref_out)
                    # dedupe cost alone
                    tm = time_it(lambda df=df: dedupe_hash(df)[1], R, keep=False)
                    record(name, enc, setname, "dedupe only (hash+verify)", tm, len(df), None)
                    dfd = sets[enc]["dup"]
                    tm = time_it(lambda dfd=dfd: dedupe_hash(dfd)[1], R, keep=False)
                    record(name, enc, "dup", "dedupe only (hash+verify)", tm, len(dfd), None)
                    M = to_plain_matrix(dfd)
                    tm = time_it(lambda M=M: dedupe_unique(M)[1], R, keep=False)
                    record(name, enc, "dup", "dedupe only (np.unique axis=0 on matrix)", tm, len(dfd), None)
                    tm = time_it(lambda M=M: dedupe_matrix(M)[1], R, keep=False)
                    record(name, enc, "dup", "dedupe only (numba row hash + check on matrix)", tm, len(dfd), None)
                gc.collect()
            del pt

    # ---------------- report
    v = versions()
    print("## Environment\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"- machine: nproc={os.cpu_count()}, CPU: {cpu_model()}, {platform.platform()}")
    print("- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(f"- command: `python {' '.join(sys.argv)}`")
    print(f"- data: train {args.train} rows, holdout {args.holdout} rows (the later slice), "
          f"{Xtr.shape[1]} features ({N_CAT} categoricals 2-6 levels, {N_BOOL} booleans, {N_NUM} count-like, "
          f"{N_CONT} bounded rounded numerics); holdout win rate {yho.mean():.3f}")
    print(f"- scoring sets: `dup` = {len(Xdup)} rows drawn with replacement from a pool of {len(pool)} distinct rows "
          f"({n_unique_dup} unique in the set); `distinct` = {len(Xdist)} distinct rows")
    print(f"- every timing: median of {R} runs, threads={nthreads}. `× ref` = deals/s divided by the reference "
          "(ref_n300 + pred_contrib, same encoding) re-measured right before that block (see probe log); "
          f"`× ref0` divides by the first reference measurement instead (cat {ref_dps['cat']:,.0f}/s, int {ref_dps['int']:,.0f}/s)")
    print(f"- wall time of the whole run: {(time.time() - t_start) / 60:.1f} min\n")

    print("## Holdout skill per shape\n")
    print(f"Oracle Brier (true probabilities) on this holdout: {brier_oracle:.5f}. "
          "ΔBrier is paired vs ref_n300 of the same encoding (negative = better), ± 2 standard errors.\n")
    print("| shape | enc | trees | max depth | mean leaf depth | Brier | ΔBrier vs ref (±2SE) | AUC | log loss |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in skill_rows:
        print(f"| {r['shape']} | {r['enc']} | {r['trees']} | {r['depth']} | {r['mean_leaf_depth']:.1f} | "
              f"{r['brier']:.5f} | {r['dbrier']:+.5f} ± {2 * r['dbrier_se']:.5f} | {r['auc']:.4f} | {r['logloss']:.4f} |")

    print("\n## Throughput and exactness\n")
    print("max |diff| is against LightGBM pred_contrib of the same model on the same rows (all F+1 columns "
          "incl. the expected-value column where the method returns it). peak RSS = VmHWM minus RSS before the call.\n")
    print("| model | enc | set | method | rows | deals/s (median) | min–max | × ref | × ref0 | max abs diff | peak extra RSS MB | note |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        only = r["method"].startswith("dedupe only")
        ratio = float("nan") if only else r["dps"] / r["ref_local"]
        ratio0 = float("nan") if only else r["dps"] / ref_dps[r["enc"]]
        print(f"| {r['model']} | {r['enc']} | {r['set']} | {r['method']} | {r['rows']:,} | {fmt(r['dps'])} | "
              f"{fmt(r['dps_min'])}–{fmt(r['dps_max'])} | {fmt(ratio, 1)} | {fmt(ratio0, 1)} | {fmt_e(r['maxdiff'])} | "
              f"{fmt(r['peak_mb'])} | {r['note']} |")
    print("\n## Reference probe log (ref_n300 + pred_contrib deals/s, re-measured before each block)\n")
    print("| block | enc | deals/s |")
    print("|---|---|---:|")
    for where, enc, dps in probe_log:
        print(f"| {where} | {enc} | {dps:,.0f} |")
    if cand_notes:
        print("\n## Candidate notes\n")
        for n in cand_notes:
            print(f"- {n}")


def confirm(args: argparse.Namespace) -> None:
    """Interleaved A/B: in every round the reference is timed immediately before each candidate, so
    a per-round ratio is immune to the slow load drift of a shared machine. Reports the median and
    the minimum of the per-round ratios."""
    nthreads = args.threads
    nb.set_num_threads(nthreads)
    rng = np.random.default_rng(args.seed)
    Xall, pall = make_deals(args.train + args.holdout, rng)
    yall = (rng.random(len(Xall)) < pall).astype(int)
    Xtr, ytr = Xall.iloc[: args.train], yall[: args.train]
    pool, _ = make_deals(args.pool, rng)
    pool = pool.drop_duplicates(ignore_index=True)
    Xdup = pool.iloc[rng.integers(0, len(pool), size=args.rows)].reset_index(drop=True)
    Xdist, _ = make_deals(int(args.rows * 1.05) + 100, rng)
    Xdist = Xdist.drop_duplicates(ignore_index=True).iloc[: args.rows].reset_index(drop=True)
    sets = {"int": {"dup": Xdup, "distinct": Xdist}}
    sets["cat"] = {k: as_native_categoricals(v) for k, v in sets["int"].items()}
    train = {"int": Xtr, "cat": as_native_categoricals(Xtr)}
    models = {}
    for name in ("ref_n300", "d3_l8_n300", "d3_l8_n150_lr0.2", "d4_l15_n200"):
        for enc in ("cat", "int"):
            m = lgb.LGBMClassifier(verbose=-1, random_state=args.seed, n_jobs=nthreads, **SHAPES[name])
            models[(name, enc)] = m.fit(train[enc], ytr)
    fts = None
    try:
        fts = importlib.import_module("fasttreeshap_fixed")
    except Exception:  # noqa: BLE001
        pass

    def pc(b):
        return lambda df: b.predict(df, pred_contrib=True, num_threads=nthreads)

    cases: list[tuple[str, str, str, str, Callable]] = []
    for name in ("d3_l8_n300", "d3_l8_n150_lr0.2", "d4_l15_n200"):
        for enc in ("cat", "int"):
            m = models[(name, enc)]
            b = m.booster_
            pt = PathTableSHAP(b)
            pt.contrib_dedupe(sets[enc]["dup"].iloc[:50])  # compile
            cases += [
                (name, enc, "distinct", "pred_contrib", pc(b)),
                (name, enc, "dup", "dedupe + pred_contrib", with_dedupe(pc(b))),
                (name, enc, "distinct", "numba path-tables", pt.contrib),
                (name, enc, "dup", "dedupe + numba path-tables", pt.contrib_dedupe),
            ]
            if fts is not None and enc == "int":
                fe = fts.TreeExplainer(m, algorithm="v2", n_jobs=nthreads)
                cases.append((name, enc, "distinct", "fasttreeshap-fixed v2",
                              lambda df, fe=fe: fe.shap_values(df, check_additivity=False)))
    ratios: dict[int, list[float]] = {i: [] for i in range(len(cases))}
    dps: dict[int, list[float]] = {i: [] for i in range(len(cases))}
    refs: list[float] = []
    for rnd in range(args.rounds):
        for i, (name, enc, setname, method, fn) in enumerate(cases):
            rb = models[("ref_n300", enc)].booster_
            sub = sets[enc]["distinct"].iloc[: args.probe_rows]
            t0 = time.perf_counter()
            rb.predict(sub, pred_contrib=True, num_threads=nthreads)
            ref = len(sub) / (time.perf_counter() - t0)
            df = sets[enc][setname]
            t0 = time.perf_counter()
            fn(df)
            d = len(df) / (time.perf_counter() - t0)
            refs.append(ref)
            dps[i].append(d)
            ratios[i].append(d / ref)
        log(f"round {rnd + 1}/{args.rounds} done")
    print("## Interleaved confirmation (reference timed right before every candidate call)\n")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; command: `python {' '.join(sys.argv)}`")
    print(f"- {args.rounds} rounds; candidate rows = {args.rows:,} (dup set: drawn from {len(pool):,} distinct rows); "
          f"reference (ref_n300 + pred_contrib) on {args.probe_rows:,} rows; reference deals/s over all "
          f"probes: median {statistics.median(refs):,.0f}, min {min(refs):,.0f}, max {max(refs):,.0f}\n")
    print("| model | enc | set | method | deals/s (median) | × ref per round: median | min | max |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for i, (name, enc, setname, method, _) in enumerate(cases):
        print(f"| {name} | {enc} | {setname} | {method} | {statistics.median(dps[i]):,.0f} | "
              f"{statistics.median(ratios[i]):.1f} | {min(ratios[i]):.1f} | {max(ratios[i]):.1f} |")


if __name__ == "__main__":
    main()

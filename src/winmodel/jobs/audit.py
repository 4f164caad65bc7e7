"""The audit job: what training would find in an export, without training.

``winmodel audit`` loads and validates the data, builds the closed deals'
point-in-time rows exactly as training does (``build_training_rows``), runs the
leakage guard over *every* column of those rows (not only the features the
model would use), and checks that there are enough won and lost deals. It
reads nothing but the data, the mapping and the config, and writes nothing.

The verdicts match training's: the guard judges one row per closed deal (its
last pre-close state) among the deals before the holdout, contract features
skip the name check, and ``leakage.allow`` keeps a feature while reporting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from winmodel.data.dataset import CRMData, load_crm_data
from winmodel.errors import InputError, Problem, ValidationReport
from winmodel.features.builder import FeatureBuilder
from winmodel.features.leakage import LeakageReport, audit_columns, univariate_auc
from winmodel.features.rows import AS_OF, build_training_rows, final_state_columns
from winmodel.modeling.train import default_maturity_days, leakage_guard, plan_folds
from winmodel.settings import TrainConfig, load_train_config

_VERDICTS = {
    "excluded": "LEAK: training excludes it",
    "allowed": "looks leaky, kept (leakage.allow)",
    "kept": "ok",
}


@dataclass(frozen=True)
class Sufficiency:
    """Whether the closed deals are enough to train on, and the time facts training would use."""

    won: int
    lost: int
    minimum: int
    comfortable: int
    maturity_days: int
    history_months: int
    first_close: pd.Timestamp | None
    last_close: pd.Timestamp | None
    split_warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Give True when both classes reach the minimum (training would not stop)."""
        return self.won >= self.minimum and self.lost >= self.minimum

    @property
    def verdict(self) -> str:
        """Give "insufficient", "thin" or "enough"."""
        if not self.ok:
            return "insufficient"
        return "thin" if min(self.won, self.lost) < self.comfortable else "enough"

    def render(self) -> str:
        """Give the sufficiency check as text."""
        lines = ["Data sufficiency:"]
        lines.append(
            f"  closed deals training can use: {self.won:,} won, {self.lost:,} lost "
            f"(minimum {self.minimum} of each, comfortable {self.comfortable})"
        )
        if self.first_close is not None and self.last_close is not None:
            lines.append(
                f"  history: {self.history_months} month(s) of closes, "
                f"{self.first_close:%Y-%m-%d} to {self.last_close:%Y-%m-%d}"
            )
        lines.append(
            f"  maturity cut-off: {self.maturity_days} days (deals created this close to a "
            "training cut-off are left out of that training set)"
        )
        lines += [f"  note: {warning}" for warning in self.split_warnings]
        if self.verdict == "insufficient":
            missing = " and ".join(
                f"{cls} ({count})"
                for cls, count in (("won", self.won), ("lost", self.lost))
                if count < self.minimum
            )
            lines.append(
                f"  INSUFFICIENT: too few {missing} deals; training would stop. Export a longer "
                "history, check the status mapping (which values mean won and lost), or lower "
                "training.min_deals_per_class if you accept a weak model"
            )
        elif self.verdict == "thin":
            lines.append(
                f"  THIN: fewer than {self.comfortable} deals of a class; training runs but "
                "scores will be noisy"
            )
        else:
            lines.append("  ENOUGH: training can run")
        return "\n".join(lines)


@dataclass(frozen=True)
class AuditReport:
    """What the audit found: the data's warnings, the leakage verdicts and the sufficiency check."""

    file: str
    data: ValidationReport
    shape_warnings: tuple[str, ...]
    guard_deals: int
    leakage: LeakageReport
    sufficiency: Sufficiency

    @property
    def ok(self) -> bool:
        """Give True when training could run on this data (leaks are reported, not fatal)."""
        return self.sufficiency.ok

    @property
    def leaks(self) -> list[str]:
        """Give the columns the guard judged leaky (excluded or allowed by the config)."""
        return sorted(
            {finding.feature for finding in self.leakage.findings if finding.action != "kept"}
        )

    def to_frame(self) -> pd.DataFrame:
        """Give the leakage table: feature, check, figure, verdict, detail (leaks first)."""
        table = self.leakage.to_frame()
        table = table.assign(
            verdict=table["action"].map(_VERDICTS),
            _order=table["action"].map({"excluded": 0, "allowed": 1, "kept": 2}),
        )
        table = table.sort_values(["_order", "figure"], ascending=[True, False], kind="stable")
        return table[["feature", "check", "figure", "verdict", "detail"]].reset_index(drop=True)

    def render(self) -> str:
        """Give the whole audit as text for the console."""
        lines = [f"Audit of {self.file}"]
        lines += [f"  {fact}" for fact in self.data.facts]
        for problem in self.data.warnings:
            lines.append(
                f"  warning: {problem.column + ': ' if problem.column else ''}{problem.problem}"
            )
        lines += [f"  warning: {warning}" for warning in self.shape_warnings]
        lines.append("")
        lines.append(
            f"Leakage guard over every column ({len(self.leakage.checked)} checked on "
            f"{self.guard_deals:,} closed deals before the holdout, each at its last pre-close state):"
        )
        table = self.to_frame()
        if table.empty:
            lines.append("  no column to judge")
        else:
            width = max(len("feature"), *(len(name) for name in table["feature"]))
            lines.append(f"  {'feature':<{width}}  {'check':<15}  {'figure':>6}  verdict")
            for row in table.itertuples(index=False):
                lines.append(
                    f"  {row.feature:<{width}}  {row.check:<15}  {row.figure:>6.3f}  {row.verdict}"
                )
                if row.verdict != "ok":
                    lines.append(f"  {'':<{width}}    {row.detail}")
        leaks = self.leaks
        lines.append(f"  {len(leaks)} leaky column(s)" + (f": {', '.join(leaks)}" if leaks else ""))
        lines.append("")
        lines.append(self.sufficiency.render())
        return "\n".join(lines)


def audit_rows(
    rows: pd.DataFrame,
    config: TrainConfig,
    *,
    extra_features: tuple[tuple[str, str], ...] = (),
    final_state: Sequence[str] = (),
    open_deals: pd.DataFrame | None = None,
    snapshot_columns: Sequence[str] = (),
) -> tuple[LeakageReport, Sufficiency, int]:
    """Give the leakage verdict on every column, the sufficiency check and the number of deals judged.

    ``rows`` are closed deals' point-in-time rows as ``build_training_rows``
    gives them (``status``, ``created_date``, ``close_date``,
    ``is_last_before_close`` and the feature columns). The guard sees what
    training's guard sees: the last pre-close row of each deal that closed
    before the holdout, with the derived features added.
    """
    last = (
        rows["is_last_before_close"].to_numpy(dtype=bool) if len(rows) else np.zeros(0, dtype=bool)
    )
    deals = rows[last]
    won = int(deals["status"].eq("won").sum())
    lost = int(deals["status"].eq("lost").sum())
    closes = deals["close_date"].dropna()
    if closes.empty:
        sufficiency = Sufficiency(
            won,
            lost,
            config.training.min_deals_per_class,
            config.training.warn_deals_per_class,
            0,
            0,
            None,
            None,
        )
        return LeakageReport(findings=(), checked=()), sufficiency, 0

    cycle = (deals["close_date"] - deals["created_date"]).dt.days
    maturity = (
        default_maturity_days(cycle)
        if config.training.maturity_days == "auto"
        else int(config.training.maturity_days)
    )
    _, final, split_warnings = plan_folds(closes, config)
    span = (closes.max().to_period("M") - closes.min().to_period("M")).n + 1
    sufficiency = Sufficiency(
        won=won,
        lost=lost,
        minimum=config.training.min_deals_per_class,
        comfortable=config.training.warn_deals_per_class,
        maturity_days=maturity,
        history_months=span,
        first_close=closes.min(),
        last_close=closes.max(),
        split_warnings=tuple(split_warnings),
    )

    # As training: one row per deal, the training period only; contract features skip the name check.
    guard_rows = rows[last & (rows["close_date"] < final.validation_end).to_numpy()]
    ignored = [c for c in final_state if c not in config.features.allow_final_state]
    derived = FeatureBuilder(extra_features=extra_features, ignore_inputs=ignored)._with_derived(
        guard_rows
    )
    _, leakage = leakage_guard(
        guard_rows,
        config,
        extra_features=extra_features,
        final_state=final_state,
        open_deals=open_deals,
        snapshot_columns=snapshot_columns,
        columns=audit_columns(derived),
    )
    won_label = guard_rows["status"].eq("won").to_numpy()
    return (
        _with_data_figures(
            leakage,
            pd.concat([guard_rows, derived[[c for c in derived if c not in guard_rows]]], axis=1),
            won_label,
            config.seed,
        ),
        sufficiency,
        len(guard_rows),
    )


def _with_data_figures(
    leakage: LeakageReport, rows: pd.DataFrame, won: np.ndarray, seed: int
) -> LeakageReport:
    """Give the report with the univariate AUC added to columns refused by name (how leaky the data is)."""
    findings = []
    for finding in leakage.findings:
        if finding.check in ("name", "final_state") and finding.feature in rows:
            auc = univariate_auc(rows[finding.feature], won, seed=seed)
            finding = replace(
                finding,
                detail=f"{finding.detail}; alone it separates won from lost with AUC {auc:.3f}",
            )
        findings.append(finding)
    return replace(leakage, findings=tuple(findings))


def audit_data(data: CRMData, config: TrainConfig) -> AuditReport:
    """Give the audit of a loaded export under a training config."""
    rows, shape_warnings = build_training_rows(data, config)
    extra = tuple((feature.name, feature.kind) for feature in data.extra_features)
    open_deals = data.opportunities[data.opportunities["status"].eq("open")].assign(
        **{AS_OF: data.as_of}
    )
    leakage, sufficiency, guard_deals = audit_rows(
        rows,
        config,
        extra_features=extra,
        final_state=final_state_columns(data),
        open_deals=open_deals,
        snapshot_columns=[] if data.snapshots is None else list(data.snapshots.columns),
    )
    return AuditReport(
        file=data.files.get("opportunities", "the export"),
        data=data.report,
        shape_warnings=tuple(shape_warnings),
        guard_deals=guard_deals,
        leakage=leakage,
        sufficiency=sufficiency,
    )


def run_audit(
    *,
    data: Path | str | None = None,
    mapping: Path | None = None,
    config: Path | None = None,
) -> AuditReport:
    """Give the audit of the export named by ``data``/``mapping`` or by the config's ``data:`` section.

    ``config`` is a training config (``pipelines/train.yaml``): its thresholds,
    leakage settings and seed are used; without one the defaults are. Flags
    override the config's data and mapping. Raises ``InputError`` when the
    config, the mapping or the data cannot be used.
    """
    train_config = load_train_config(config) if config is not None else TrainConfig()
    location = train_config.data.location(data) if data is not None else None
    if config is not None:
        location = location or train_config.data.location()
        mapping = mapping or train_config.data.mapping
    if location is None:
        raise InputError(
            Problem(
                file="(command line)",
                column=None,
                problem="no data to audit",
                fix="give --data PATH (with optional --mapping FILE) or --config FILE",
            )
        )
    crm = load_crm_data(location, mapping)
    return audit_data(crm, train_config)

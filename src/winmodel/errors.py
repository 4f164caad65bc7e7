"""Problems found in user input, collected into one report a person can act on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where, what, how many rows, and how to fix it.

    ``examples`` holds up to five row references as the user knows them: the
    1-based line number in the file (header = line 1) or the opportunity id.
    """

    file: str
    column: str | None
    problem: str
    fix: str
    rows: int = 0
    examples: tuple[str, ...] = ()
    severity: Severity = "error"

    def render(self) -> str:
        """Give the problem as a few readable lines."""
        where = self.file + (f", column '{self.column}'" if self.column else "")
        head = f"{self.severity.upper()}: {where}: {self.problem}"
        lines = [head]
        if self.rows:
            examples = ", ".join(self.examples[:MAX_EXAMPLES])
            suffix = f" (e.g. {examples})" if examples else ""
            lines.append(f"  rows affected: {self.rows}{suffix}")
        lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidationReport:
    """Every problem found in one input, errors and warnings, plus facts worth printing."""

    problems: tuple[Problem, ...] = ()
    facts: tuple[str, ...] = field(default=())

    @property
    def errors(self) -> tuple[Problem, ...]:
        """Give the problems that stop the run."""
        return tuple(problem for problem in self.problems if problem.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Give the problems that do not stop the run."""
        return tuple(problem for problem in self.problems if problem.severity == "warning")

    @property
    def ok(self) -> bool:
        """Give True when there is no error (warnings allowed)."""
        return not self.errors

    def extend(
        self, problems: Iterable[Problem] = (), facts: Iterable[str] = ()
    ) -> ValidationReport:
        """Give a new report with more problems and facts."""
        return ValidationReport(problems=(*self.problems, *problems), facts=(*self.facts, *facts))

    def render(self) -> str:
        """Give the whole report as text: errors first, then warnings, then facts."""
        blocks = [problem.render() for problem in (*self.errors, *self.warnings)]
        blocks.extend(self.facts)
        summary = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        return "\n".join([*blocks, summary])


class WinmodelError(Exception):
    """Base class of the errors winmodel reports to a person (exit code 1, no traceback)."""

    exit_code = 1


class InputError(WinmodelError):
    """Raised when an input cannot be used; carries the full report of what is wrong."""

    def __init__(self, report: ValidationReport | Problem | Sequence[Problem]):
        if isinstance(report, Problem):
            report = ValidationReport(problems=(report,))
        elif not isinstance(report, ValidationReport):
            report = ValidationReport(problems=tuple(report))
        self.report = report
        super().__init__(report.render())

    def __reduce__(self) -> tuple[type[InputError], tuple[ValidationReport]]:
        # Rebuilt from the report, so the error crosses process boundaries (parallel scoring) intact.
        return (type(self), (self.report,))


class GateError(WinmodelError):
    """Raised when a check on the trained model refuses it (sufficiency, promotion)."""


def example_rows(labels: Iterable[object], limit: int = MAX_EXAMPLES) -> tuple[str, ...]:
    """Give up to ``limit`` row references as strings."""
    return tuple(str(label) for label in list(labels)[:limit])

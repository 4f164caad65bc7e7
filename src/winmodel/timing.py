"""Wall time per stage of a job, for the benchmark and the progress display."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimer:
    """Accumulates seconds per named stage (stages may repeat, e.g. once per chunk)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block and add it to ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def add(self, seconds: dict[str, float]) -> None:
        """Add another timer's seconds (a worker process's), stage by stage."""
        for name, value in seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value


class _NoTimer:
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def add(self, seconds: dict[str, float]) -> None:
        pass


NO_TIMER = _NoTimer()

#: What a job's stages are timed with: a :class:`StageTimer`, or ``NO_TIMER`` that keeps nothing.
Timer = StageTimer | _NoTimer

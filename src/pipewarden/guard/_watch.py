"""The query-pattern watch: per caller, signs of a campaign to copy the model (model extraction).

Three signals, each over the rows a caller sends (in the guard's scaled space):

- ``prada``: after Juuti et al., "PRADA: Protecting against DNN Model Stealing
  Attacks" (EuroS&P 2019). For each new query, its minimum distance to the
  caller's earlier (kept) queries is recorded; a query farther than the mean
  minus one standard deviation of those distances joins the kept set. Natural
  queries give roughly normally distributed distances; synthetic ones
  (perturbations around seeds, sweeps) do not. Once a caller has sent
  `min_queries` queries, a Shapiro-Wilk statistic W below the threshold flags
  it. The threshold is calibrated at fit time: the lowest W that simulated
  callers replaying the clean reference rows reach, less a margin.
- ``rate``: rows per second over the last `window` seconds above `max_rate`
  (off unless set).
- ``coverage``: the input space is cut into cells (the top principal
  components of the reference, in quantile bins); the share of the caller's
  queries that land in cells no reference row reaches is tested against the
  share clean rows send there (a one-sided binomial test at `alpha`). The share
  of all cells the caller has touched is reported as `coverage`.

Memory is bounded: each caller keeps at most `history` queries and distances,
a cell bitmap and per-second counters for `window` seconds, and the least
recently seen callers are forgotten beyond `max_callers`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipewarden.errors import ConfigError
from pipewarden.guard._result import ExtractionStatus, Verdict

__all__ = ["ExtractionWatch", "WatchSettings"]

Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How the extraction watch works; `prada_threshold=None` means calibrate it at fit time."""

    history: int = 512
    min_queries: int = 100
    test_every: int = 16
    prada_threshold: float | None = None
    max_rate: float | None = None
    window: int = 60
    bins: int = 6
    components: int = 3
    alpha: float = 1e-4
    max_callers: int = 10_000
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if self.history < 16 or self.min_queries < 8 or self.min_queries > self.history * 4:
            raise ConfigError(
                f"watch settings: history {self.history} and min_queries {self.min_queries}: "
                "history needs at least 16 and min_queries at least 8"
            )
        if self.test_every < 1 or self.window < 1 or self.max_callers < 1:
            raise ConfigError("watch settings: test_every, window and max_callers must be at least 1")
        if not 2 <= self.bins <= 64 or not 1 <= self.components <= 4:
            raise ConfigError("watch settings: bins must be 2..64 and components 1..4")
        if self.prada_threshold is not None and not 0.0 < self.prada_threshold < 1.0:
            raise ConfigError(f"watch settings: prada_threshold {self.prada_threshold} is not in (0, 1)")
        if self.max_rate is not None and self.max_rate <= 0:
            raise ConfigError(f"watch settings: max_rate {self.max_rate} must be positive")
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(f"watch settings: alpha {self.alpha} is not in (0, 0.5)")


class _Caller:
    __slots__ = (
        "distances",
        "kept",
        "kept_count",
        "kept_next",
        "off",
        "prada_w",
        "queries",
        "seconds",
        "signals",
        "since_test",
        "sum",
        "sumsq",
        "touched",
    )

    def __init__(self, settings: WatchSettings, dims: int, cells: int) -> None:
        self.kept = np.empty((settings.history, dims))
        self.kept_count = 0
        self.kept_next = 0
        self.distances: deque[float] = deque(maxlen=settings.history)
        self.sum = 0.0  # running sums over `distances`, for the mean and standard deviation
        self.sumsq = 0.0
        self.queries = 0
        self.off = 0
        self.touched = np.zeros(cells, dtype=bool)
        self.seconds: deque[list[int]] = deque(maxlen=settings.window)
        self.prada_w: float | None = None
        self.since_test = 0
        self.signals: tuple[str, ...] = ()


class ExtractionWatch:
    """Per-caller state and the three signals; thread-safe."""

    def __init__(
        self, settings: WatchSettings, rows: Array, splits: list[tuple[Array, Array]], *, seed: int
    ) -> None:
        """`rows` are the reference rows in the guard's scaled space; `splits` are (fit, held-out) index
        pairs over them, for measuring how often clean rows land where the others never do."""
        self.settings = settings
        rows = _space(rows)
        centre = rows.mean(axis=0)
        _, _, vt = np.linalg.svd(rows - centre, full_matrices=False)
        self.centre = centre
        self.axes = np.ascontiguousarray(vt[: settings.components].T)
        projected = (rows - centre) @ self.axes
        # Quantile bins, plus one bin beyond each end of the reference's range: those no clean row reaches.
        qs = np.linspace(0, 1, settings.bins + 1)
        self.edges = [
            np.unique(np.r_[np.quantile(projected[:, i], qs), np.nextafter(projected[:, i].max(), np.inf)])
            for i in range(self.axes.shape[1])
        ]
        self.radix = np.cumprod([1] + [len(e) + 1 for e in self.edges[:-1]])
        self.cells = int(np.prod([len(e) + 1 for e in self.edges]))
        cell = self._cells(rows)
        self.populated = np.zeros(self.cells, dtype=bool)
        self.populated[cell] = True
        off = held = 0
        for fit, out in splits:
            seen = np.zeros(self.cells, dtype=bool)
            seen[cell[fit]] = True
            off += int((~seen[cell[out]]).sum())
            held += len(out)
        # Half a row in all the held-out ones is the least we can claim to have measured.
        self.off_rate = max(off, 0.5) / max(held, 1)
        # Distances are tested on a log scale (natural ones are closer to log-normal than to normal);
        # the offset, a tenth of a typical nearest-neighbour distance, keeps a repeated query finite.
        probe = rows[np.random.default_rng(seed).permutation(len(rows))[:200]]
        gaps = [np.sort(np.sqrt(((rows - row) ** 2).sum(axis=1)))[1] for row in probe]
        self.offset = max(0.1 * float(np.median(gaps)), 1e-9)
        self.threshold = (
            settings.prada_threshold
            if settings.prada_threshold is not None
            else self._calibrate(rows, seed=seed)
        )
        self._callers: OrderedDict[str, _Caller] = OrderedDict()
        self._lock = threading.Lock()

    def _cells(self, z: Array) -> Array:
        projected = (z - self.centre) @ self.axes
        cell = np.zeros(z.shape[0], dtype=np.int64)
        for i, edges in enumerate(self.edges):
            cell += np.searchsorted(edges, projected[:, i]) * int(self.radix[i])
        return cell

    def _calibrate(self, rows: Array, *, seed: int) -> float:
        """The lowest PRADA W reached by simulated callers that replay clean rows, less a margin of 0.01."""
        rng = np.random.default_rng(seed)
        length = min(len(rows), self.settings.history * 2)
        if length < self.settings.min_queries:
            raise ConfigError(
                f"watch settings: min_queries {self.settings.min_queries} is more than the {len(rows)} "
                "reference rows the PRADA threshold is calibrated on; lower it or set prada_threshold"
            )
        lowest = 1.0
        for _ in range(8):
            state = _Caller(self.settings, rows.shape[1], self.cells)
            for row in rows[rng.permutation(len(rows))[:length]]:
                self._add(state, row)
                if len(state.distances) >= self.settings.min_queries:
                    state.since_test += 1
                    if state.since_test >= self.settings.test_every:
                        state.since_test = 0
                        lowest = min(lowest, _shapiro(state.distances, self.offset))
        return max(lowest - 0.01, 0.01)

    def _add(self, state: _Caller, row: Array) -> None:
        if state.kept_count:
            kept = state.kept[: state.kept_count]
            diff = kept - row
            distance = float(np.sqrt(np.einsum("ij,ij->i", diff, diff).min()))
            distances = state.distances
            count = len(distances)
            if count >= 2:
                mean = state.sum / count
                std = math.sqrt(max(state.sumsq / count - mean * mean, 0.0))
                keep = distance > mean - std
            else:
                keep = True
            if count == distances.maxlen:
                oldest = distances[0]
                state.sum -= oldest
                state.sumsq -= oldest * oldest
            distances.append(distance)
            state.sum += distance
            state.sumsq += distance * distance
        else:
            keep = True
        if keep:
            state.kept[state.kept_next] = row
            state.kept_next = (state.kept_next + 1) % len(state.kept)
            state.kept_count = min(state.kept_count + 1, len(state.kept))

    def observe(self, caller: str, z: Array) -> ExtractionStatus:
        """Record the rows `z` (scaled, shape (m, d)) that `caller` sent and return its status."""
        settings = self.settings
        z = _space(z)
        cells = self._cells(z) if len(z) else np.zeros(0, dtype=np.int64)
        now = int(settings.clock())
        with self._lock:
            state = self._callers.get(caller)
            if state is None:
                state = _Caller(settings, z.shape[1], self.cells)
                self._callers[caller] = state
                while len(self._callers) > settings.max_callers:
                    self._callers.popitem(last=False)
            else:
                self._callers.move_to_end(caller)
            for row in z:
                self._add(state, row)
            state.queries += len(z)
            new_off = int((~self.populated[cells]).sum())
            state.off += new_off
            state.touched[cells] = True
            if state.seconds and state.seconds[-1][0] == now:
                state.seconds[-1][1] += len(z)
            else:
                state.seconds.append([now, len(z)])
            state.since_test += len(z)
            tested = len(state.distances) >= settings.min_queries and state.since_test >= settings.test_every
            if tested:
                state.since_test = 0
                state.prada_w = _shapiro(state.distances, self.offset)
            rate = sum(n for second, n in state.seconds if second > now - settings.window) / settings.window
            signals = set(state.signals)
            if state.prada_w is not None and state.prada_w < self.threshold:
                signals.add("prada")
            if settings.max_rate is not None and rate > settings.max_rate:
                signals.add("rate")
            # The binomial test costs more than the rest of a check: run it when it could fire and there
            # is something new to test (new queries off the manifold, or the periodic PRADA test).
            if (
                (new_off or tested)
                and state.queries >= settings.min_queries
                and state.off > state.queries * self.off_rate
                and _binomial_sf(state.off, state.queries, self.off_rate) < settings.alpha
            ):
                signals.add("coverage")
            state.signals = tuple(sorted(signals))
            return ExtractionStatus(
                caller=caller,
                verdict=Verdict.SUSPECTED_EXTRACTION if state.signals else Verdict.VALID,
                signals=state.signals,
                queries=state.queries,
                prada_w=state.prada_w,
                prada_threshold=self.threshold,
                rate=rate,
                coverage=float(state.touched.mean()),
                off_manifold=state.off / state.queries if state.queries else 0.0,
            )

    def forget(self, caller: str) -> bool:
        """Drop what the watch knows of `caller` (after a review); True when it knew the caller."""
        with self._lock:
            return self._callers.pop(caller, None) is not None

    def __len__(self) -> int:
        return len(self._callers)


def _space(z: Array) -> Array:
    """The watch's space: the guard's scaled space clipped to half a reference range beyond the reference,
    so that one wild value does not make every distance an outlier."""
    return np.clip(z, -0.5, 1.5)


def _shapiro(distances: deque[float], offset: float) -> float:
    from scipy.stats import shapiro

    values = np.log(np.fromiter(distances, dtype=np.float64) + offset)
    if np.ptp(values) == 0.0:  # every query at the same distance: as far from natural as it gets
        return 0.0
    return float(shapiro(values).statistic)


def _binomial_sf(hits: int, n: int, p: float) -> float:
    """P(X >= hits) for X ~ Binomial(n, p)."""
    if hits == 0:
        return 1.0
    from scipy.stats import binom

    return float(binom.sf(hits - 1, n, p))

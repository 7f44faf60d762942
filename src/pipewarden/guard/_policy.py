"""What to do with each verdict, and the predict function that does it (`InferenceGuard.wrap`)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pipewarden.errors import ConfigError, GuardError
from pipewarden.guard._result import ACTIONS, Action, GuardResult, Verdict

if TYPE_CHECKING:
    from pipewarden.guard._guard import InferenceGuard

__all__ = ["GuardPolicy", "GuardedPrediction", "GuardedPredictor", "Refusal", "RowsRefused"]

logger = logging.getLogger(__name__)


class Refusal(enum.Enum):
    """How a wrapped predict function refuses: raise `RowsRefused`, or return a `GuardedPrediction`."""

    RAISE = "raise"
    RETURN = "return"


class RowsRefused(GuardError):
    """The guard refused rows of a batch; `result` has every row's verdict and reason."""

    def __init__(self, message: str, *, result: GuardResult) -> None:
        super().__init__(message)
        self.result = result


E = TypeVar("E", bound=enum.Enum)


def _choice(kind: type[E], value: E | str, what: str) -> E:
    """`value` as a member of `kind`, read case-insensitively; `ConfigError` naming `what` otherwise."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        names = ", ".join(str(member.value) for member in kind)
        raise ConfigError(f"guard policy: {what} {value!r} is not one of {names}") from None


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """An action per verdict, and how refusals reach the caller of a wrapped predict function.

    The default refuses rows that break the contract or look adversarial, and
    lets out-of-distribution rows and suspected extraction campaigns through
    with a flag (in the result, the event and the log). A policy that passes
    everything is refused: that is no guard.

    >>> GuardPolicy.of({"contract_violation": "refuse", "out_of_distribution": "refuse"})
    """

    contract_violation: Action = Action.REFUSE
    out_of_distribution: Action = Action.FLAG
    suspected_adversarial: Action = Action.REFUSE
    suspected_extraction: Action = Action.FLAG
    refusal: Refusal = Refusal.RAISE
    _codes: np.ndarray[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for verdict in (
            Verdict.CONTRACT_VIOLATION,
            Verdict.OUT_OF_DISTRIBUTION,
            Verdict.SUSPECTED_ADVERSARIAL,
            Verdict.SUSPECTED_EXTRACTION,
        ):
            object.__setattr__(
                self, verdict.value, _choice(Action, getattr(self, verdict.value), f"{verdict.value} action")
            )
        object.__setattr__(self, "refusal", _choice(Refusal, self.refusal, "refusal"))
        if all(self.for_verdict(v) is Action.PASS for v in Verdict if v is not Verdict.VALID):
            raise ConfigError("guard policy: every verdict passes, which guards nothing")
        from pipewarden.guard._result import ROW_VERDICTS

        codes = np.array([ACTIONS.index(self.for_verdict(v)) for v in ROW_VERDICTS], dtype=np.int8)
        codes.setflags(write=False)
        object.__setattr__(self, "_codes", codes)

    @classmethod
    def of(
        cls, actions: Mapping[Verdict | str, Action | str], *, refusal: Refusal | str = Refusal.RAISE
    ) -> GuardPolicy:
        """A policy from a mapping of verdicts (or their names) to actions; unnamed verdicts keep defaults."""
        fields: dict[str, Any] = {}
        for key, value in actions.items():
            try:
                verdict = key if isinstance(key, Verdict) else Verdict(str(key).strip().lower())
            except ValueError:
                raise ConfigError(f"guard policy: {key!r} is not a verdict") from None
            if verdict is Verdict.VALID:
                raise ConfigError("guard policy: valid rows always pass; name the other verdicts")
            fields[verdict.value] = _choice(Action, value, f"{verdict.value} action")
        return cls(**fields, refusal=_choice(Refusal, refusal, "refusal"))

    def for_verdict(self, verdict: Verdict) -> Action:
        if verdict is Verdict.VALID:
            return Action.PASS
        action: Action = getattr(self, verdict.value)
        return action

    def row_codes(self) -> np.ndarray[Any, Any]:
        """Action codes (indices into `ACTIONS`) for the row verdict codes 0..3 (read-only)."""
        return self._codes


@dataclass(frozen=True, slots=True)
class GuardedPrediction:
    """What a wrapped predict function returns under `Refusal.RETURN`.

    `predictions` is the predict function's output for the rows in `rows` (the
    batch rows not refused, in order), None when every row was refused;
    `result` holds every row's verdict, including the refused ones.
    """

    predictions: Any
    rows: tuple[int, ...]
    result: GuardResult

    @property
    def refused(self) -> tuple[int, ...]:
        return self.result.refused


class GuardedPredictor:
    """A predict function behind the guard: check the batch, then refuse, flag or pass rows by policy."""

    def __init__(
        self, guard: InferenceGuard, predict_fn: Callable[[Any], Any], *, policy: GuardPolicy
    ) -> None:
        self.guard = guard
        self.predict_fn = predict_fn
        self.policy = policy

    def __call__(self, batch: Any, *, caller: str | None = None) -> Any:
        result = self.guard.check_with(batch, caller=caller, policy=self.policy)
        if result.flagged:
            logger.warning(
                "guard flagged %d of %d rows (caller %s): %s",
                len(result.flagged),
                len(result),
                caller,
                result.counts(),
            )
        if self.policy.refusal is Refusal.RAISE:
            if not result.allowed:
                first_refused = result.refused
                first = result.row(first_refused[0])
                raise RowsRefused(
                    f"{result.source}: the guard refused {len(first_refused)} of {len(result)} rows "
                    f"(row {first.row}: {first.reason})",
                    result=result,
                )
            return self.predict_fn(batch)
        refused = set(result.refused)
        keep = tuple(i for i in range(len(result)) if i not in refused)
        if not keep:
            return GuardedPrediction(predictions=None, rows=(), result=result)
        if len(keep) == len(result):
            return GuardedPrediction(predictions=self.predict_fn(batch), rows=keep, result=result)
        return GuardedPrediction(predictions=self.predict_fn(_take(batch, keep)), rows=keep, result=result)


def _take(batch: Any, rows: tuple[int, ...]) -> Any:
    iloc = getattr(batch, "iloc", None)
    if iloc is not None:
        return iloc[list(rows)]
    array = np.asarray(batch)
    if array.ndim == 1:
        return array
    return array[list(rows)]

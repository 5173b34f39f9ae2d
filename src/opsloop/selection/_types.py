"""What a selection produces: constraints, objectives, leaderboard rows and the recommendation."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from opsloop.errors import InvalidArgument

# Leaderboard columns an objective may name, with the direction that is better by default.
OBJECTIVE_FIELDS: dict[str, str] = {
    "quality": "maximize",
    "p50_latency_ms": "minimize",
    "p95_latency_ms": "minimize",
    "tokens_per_s": "maximize",
    "cost_per_1k_usd": "minimize",
    "memory_mb": "minimize",
}
DEFAULT_OBJECTIVES: dict[str, str] = {
    "quality": "maximize",
    "p95_latency_ms": "minimize",
    "cost_per_1k_usd": "minimize",
}
_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def check_objectives(objectives: Mapping[str, str] | None) -> dict[str, str]:
    """``{column: "maximize"|"minimize"}``; ``max``/``min`` are accepted. At least one."""
    if objectives is None:
        return dict(DEFAULT_OBJECTIVES)
    if not isinstance(objectives, Mapping) or not objectives:
        raise InvalidArgument(
            "objectives must be a non-empty mapping like {'quality': 'max', 'p95_latency_ms': 'min'}"
        )
    out: dict[str, str] = {}
    for name, d in objectives.items():
        if name not in OBJECTIVE_FIELDS:
            raise InvalidArgument(
                f"unknown objective {name!r}; choose from {sorted(OBJECTIVE_FIELDS)}"
            )
        direction = _DIRECTIONS.get(str(d).lower())
        if direction is None:
            raise InvalidArgument(
                f"objective {name!r}: direction must be 'max' or 'min', not {d!r}"
            )
        out[name] = direction
    return out


@dataclass(frozen=True)
class Constraints:
    """Limits a recommended candidate must meet; ``None`` means no limit."""

    max_p95_latency_ms: float | None = None
    max_cost_per_1k_usd: float | None = None
    max_memory_mb: float | None = None
    min_quality: float | None = None

    def __post_init__(self) -> None:
        for name, v in asdict(self).items():
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InvalidArgument(f"constraint {name} must be a finite number, not {v!r}")
            if v < 0:
                raise InvalidArgument(f"constraint {name} must be at least 0, got {v}")

    @classmethod
    def coerce(cls, value: Constraints | Mapping[str, Any] | None) -> Constraints:
        if value is None:
            return cls()
        if isinstance(value, Constraints):
            return value
        if not isinstance(value, Mapping):
            raise InvalidArgument("constraints must be a Constraints or a mapping")
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidArgument(
                f"unknown constraint(s) {sorted(unknown)}; "
                f"choose from {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(value))

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class LeaderboardRow:
    """One candidate's measured figures.

    ``memory_mb`` is ``None`` for a remote endpoint (it uses no local memory:
    constraints and objectives count it as 0). ``cost_per_1k_usd`` is
    ``None`` when no price is known for the model.
    """

    candidate: str
    provider: str = ""
    model: str = ""
    quality: float | None = None
    quality_ci: tuple[float, float] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    tokens_per_s: float | None = None
    cost_per_1k_usd: float | None = None
    memory_mb: float | None = None
    errors: int = 0
    examples: int = 0
    run_id: str | None = None
    pareto: bool = False
    violations: list[str] = field(default_factory=list)

    @property
    def local(self) -> bool:
        return self.provider != "openai"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["quality_ci"] = list(self.quality_ci) if self.quality_ci else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LeaderboardRow:
        data = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        ci = data.get("quality_ci")
        data["quality_ci"] = (float(ci[0]), float(ci[1])) if ci else None
        return cls(**data)


@dataclass
class Leaderboard:
    """Rows best quality first (ties: lower p95 latency, then lower cost, then name)."""

    rows: list[LeaderboardRow]

    def __iter__(self) -> Iterator[LeaderboardRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, candidate: str) -> LeaderboardRow:
        for r in self.rows:
            if r.candidate == candidate:
                return r
        raise KeyError(candidate)

    @property
    def pareto(self) -> list[str]:
        return [r.candidate for r in self.rows if r.pareto]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]


@dataclass
class Recommendation:
    """The chosen candidate (``None`` when none met the constraints), why, and who was rejected."""

    candidate: str | None
    reason: str
    rejected: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Selection:
    """The outcome of ``select_model``: leaderboard, Pareto front, recommendation, registration."""

    run_id: str | None
    leaderboard: Leaderboard
    recommendation: Recommendation
    objectives: dict[str, str]
    constraints: Constraints
    metrics: list[str]
    registered: Any = None  # a ModelVersion when register_as was given and a candidate won
    registered_uri: str | None = None

    @property
    def pareto(self) -> list[str]:
        return self.leaderboard.pareto

    @property
    def best(self) -> LeaderboardRow | None:
        c = self.recommendation.candidate
        return None if c is None else self.leaderboard[c]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "metrics": self.metrics,
            "objectives": self.objectives,
            "constraints": self.constraints.to_dict(),
            "leaderboard": self.leaderboard.to_dicts(),
            "pareto": self.pareto,
            "recommendation": self.recommendation.to_dict(),
            "registered": self.registered_uri,
        }

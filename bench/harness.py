"""What every benchmark reports, and how the figures are printed and saved.

A figure is a value and a baseline measured in the same run on the same machine; the ratio is
what is compared across runs, since absolute numbers on a noisy 2-core machine mean little.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "latest.json"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    baseline: float
    unit: str
    goal: str = ""  # e.g. ">= 0.5", shown beside the ratio

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def report(figures: list[Figure]) -> None:
    width = max((len(f.name) for f in figures), default=10)
    print(f"{'figure':<{width}}  {'value':>12}  {'baseline':>12}  {'ratio':>8}  unit / goal")
    for f in figures:
        print(
            f"{f.name:<{width}}  {f.value:>12.4g}  {f.baseline:>12.4g}  {f.ratio:>8.3f}  "
            f"{f.unit}{'  (goal ' + f.goal + ')' if f.goal else ''}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing.update(
        {
            f.name: {"value": f.value, "baseline": f.baseline, "ratio": f.ratio, "unit": f.unit}
            for f in figures
        }
    )
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"written to {RESULTS}")

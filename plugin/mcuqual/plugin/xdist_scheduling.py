"""pytest-xdist scheduling for a qualification run: whole models per worker.

Every test of one model (its requirement cases on every board, its regression checks, users'
tests on its deployments) goes to the same worker, so that no two workers quantize, evaluate
or build the same thing or write the same cache entry. The controller collects nothing; it
knows the run's boards and models, and reads a test's (board, model) from its parameter id,
which the plugin makes as "<board>-<model>[-<requirement>]". A test of no model is a scope
of its own. Imported by the plugin only when pytest-xdist asks for a scheduler.
"""
from __future__ import annotations

import re

from xdist.scheduler.loadscope import LoadScopeScheduling

_PARAMETER_ID = re.compile(r"\[(?P<id>[^\]]*)\]$")


class ModelScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, with a model's tests as one scope."""

    def __init__(self, config, log=None, *, boards: list[str], models: list[str]) -> None:
        super().__init__(config, log)
        # longest names first: a model whose name starts with another's is matched whole
        self._pairs = sorted(((board, model) for board in boards for model in models),
                             key=lambda pair: -len(pair[0]) - len(pair[1]))

    def _split_scope(self, nodeid: str) -> str:
        return model_scope(nodeid, self._pairs) or nodeid


def model_scope(nodeid: str, pairs: list[tuple[str, str]]) -> str | None:
    """'model:<name>' for a test of one of the run's (board, model) pairs, else None."""
    match = _PARAMETER_ID.search(nodeid)
    if match is None:
        return None
    parameter = match.group("id")
    for board, model in pairs:
        prefix = f"{board}-{model}"
        if parameter == prefix or parameter.startswith(prefix + "-"):
            return f"model:{model}"
    return None

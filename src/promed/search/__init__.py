"""Stage 1: SIG-guided Monte Carlo Tree Search over consultations and export of the best trajectories.

* :mod:`promed.search.mcts` - world model (:class:`ConsultationWorld`), rewards (:class:`Rewarder`), the algorithm
  (:func:`mcts_search`) and its typed result (:class:`MctsResult`).
* :mod:`promed.search.candidates` - candidate sources: ``policy``, ``facts``, ``both``.
* :mod:`promed.runs.mcts` (above this package) - ``promed mcts``: ``MctsRunConfig`` and ``run_mcts`` (resumable JSONL export).
"""

from promed.search.mcts import (
    CandidateSource,
    ConsultationWorld,
    MctsConfig,
    MctsResult,
    MctsStats,
    Proposal,
    Rewarder,
    State,
    Trajectory,
    mcts_search,
    rank_trajectories,
    uct_scores,
)

__all__ = [
    "CandidateSource",
    "ConsultationWorld",
    "MctsConfig",
    "MctsResult",
    "MctsStats",
    "Proposal",
    "Rewarder",
    "State",
    "Trajectory",
    "mcts_search",
    "rank_trajectories",
    "uct_scores",
]

"""Stage 2: group-relative policy optimisation over consultations, with SIG credit (ARCHITECTURE.md section 4b).

One job per module:

* :mod:`.config` - :class:`GRPORunConfig`, the settings;
* :mod:`.episode` - one consultation as TRL's rollout fields plus a frozen :class:`EpisodeRecord`; the step metrics
  and ``rollouts.jsonl`` lines (pure functions, no TRL);
* :mod:`.trainer` - the one module that touches TRL: the ``rollout_func`` adapter, the reward function, the
  ``GRPOTrainer`` subclass with per-token advantages, its ``GRPOConfig``;
* :mod:`.run` - :func:`run_grpo`: cases, the Shapley cache filled before training, resume, logs, plots.

The advantages themselves are pure functions in :mod:`promed.train.advantages`.
"""

from promed.train.grpo.config import GRPORunConfig
from promed.train.grpo.episode import EpisodeRecord, rollout_row, turn_kinds
from promed.train.grpo.run import GRPOResult, load_cases, plot_curves, prepare_shapley, read_log, run_grpo
from promed.train.grpo.trainer import episode_reward_func, make_grpo_args, trainer_class

__all__ = ["EpisodeRecord", "GRPOResult", "GRPORunConfig", "episode_reward_func", "load_cases", "make_grpo_args",
           "plot_curves", "prepare_shapley", "read_log", "rollout_row", "run_grpo", "trainer_class", "turn_kinds"]

"""Batched rollouts: many consultations stepped in lock-step so that models are called once per step for all.

Each step calls the doctor once for every running episode (``doctor.act(views)``), parses the outputs, and calls
the patient once for all the questions asked (``patient.reply(cases, questions)``). Episodes that finish drop out.
Determinism: each episode's environment RNG is seeded from ``(seed, case index)``; the doctor gets one RNG seeded
from ``seed``, so a run is reproducible for the same cases, seed and batch size.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from promed.env.consultation import Consultation, EnvConfig
from promed.types import Case, Doctor, Patient, Transcript


def episode_seeds(seed: int, n: int) -> list[int]:
    """Independent per-episode seeds derived from one run seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def run_episodes(
    cases: Sequence[Case],
    doctor: Doctor,
    patient: Patient,
    cfg: EnvConfig = EnvConfig(),
    seed: int = 0,
    batch_size: int = 64,
    on_done: Callable[[Transcript], None] | None = None,
) -> list[Transcript]:
    """Run one consultation per case with ``doctor``; return the transcripts in case order.

    ``on_done`` is called with each transcript as soon as its episode ends (for progress bars and streaming
    output).
    """
    rng = np.random.default_rng(seed)
    seeds = episode_seeds(seed, len(cases))
    out: list[Transcript | None] = [None] * len(cases)
    for start in range(0, len(cases), batch_size):
        envs = []
        for i in range(start, min(start + batch_size, len(cases))):
            env = Consultation(patient, cfg)
            env.reset(cases[i], seed=seeds[i])
            envs.append((i, env))
        while envs:
            texts = doctor.act([env.view() for _, env in envs], rng)
            actions = [env.parse(t) for (_, env), t in zip(envs, texts)]
            asking = [k for k, ((_, env), a) in enumerate(zip(envs, actions)) if env.needs_reply(a)]
            replies = (patient.reply([envs[k][1].case for k in asking], [actions[k].question for k in asking])
                       if asking else [])
            reply_of = dict(zip(asking, replies))
            running = []
            for k, ((i, env), action, text) in enumerate(zip(envs, actions, texts)):
                env.apply(action, reply_of.get(k), raw=text)
                if env.done:
                    out[i] = env.transcript(doctor.name)
                    if on_done:
                        on_done(out[i])
                else:
                    running.append((i, env))
            envs = running
    return out  # type: ignore[return-value]

"""Batched rollouts: many consultations stepped in lock-step so that models are called once per step for all.

Each step calls the doctor once for every running episode (``doctor.act(views, rngs)``), parses the outputs, and
calls the patient once for all the questions asked (``patient.reply(cases, questions)``). Episodes that finish
drop out and the next ones waiting take their place, so a batch stays full.

Sampled groups: :func:`run_groups` runs ``G`` independent consultations of every case (Stage 2 compares them;
evaluation reports pass@G), each keyed by ``(case id, sample index)``.

Determinism: every random choice of an episode - the doctor's (sampling seeds, random questions) and the
environment's (forced answers) - comes from two generators spawned from ``SeedSequence([run seed, hash(case id),
sample index])``. An episode's result therefore depends only on (seed, case, sample, doctor, patient): not on the
batch size, its position in the batch, the other cases of the run, or where an interrupted run resumed.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from promed.env.consultation import Consultation, EnvConfig
from promed.errors import InputError
from promed.types import Case, Doctor, Patient, Sampling, Transcript


def episode_seed(seed: int, case_id: str, sample: int = 0) -> np.random.SeedSequence:
    """The seed sequence of one consultation: (run seed, case id, sample index), nothing else."""
    cid = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, cid & 0xFFFFFFFF, cid >> 32, int(sample)])


@dataclass(frozen=True)
class Episode:
    """One consultation to run: a case and its sample index within the case's group."""

    case: Case
    sample: int = 0


def run_consultations(
    episodes: Sequence[Episode],
    doctor: Doctor,
    patient: Patient,
    cfg: EnvConfig = EnvConfig(),
    seed: int = 0,
    batch_size: int = 64,
    on_done: Callable[[Transcript], None] | None = None,
) -> list[Transcript]:
    """Run every episode; return the transcripts in episode order.

    ``on_done`` is called with each transcript as soon as its episode ends (progress bars, streaming output).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out: list[Transcript | None] = [None] * len(episodes)
    waiting = deque(range(len(episodes)))
    running: list[tuple[int, Consultation, np.random.Generator]] = []
    while waiting or running:
        while waiting and len(running) < batch_size:
            i = waiting.popleft()
            ep = episodes[i]
            env_seed, doctor_seed = episode_seed(seed, ep.case.id, ep.sample).spawn(2)
            env = Consultation(patient, cfg)
            env.reset(ep.case, seed=env_seed, sample=ep.sample)
            running.append((i, env, np.random.default_rng(doctor_seed)))
        outputs = doctor.act([env.view() for _, env, _ in running], [rng for _, _, rng in running])
        actions = [env.parse(o) for (_, env, _), o in zip(running, outputs)]
        asking = [k for k, ((_, env, _), a) in enumerate(zip(running, actions)) if env.needs_reply(a)]
        replies = (patient.reply([running[k][1].case for k in asking], [actions[k].question for k in asking])
                   if asking else [])
        reply_of = dict(zip(asking, replies))
        still = []
        for k, ((i, env, rng), action, output) in enumerate(zip(running, actions, outputs)):
            env.apply(action, reply_of.get(k), output)
            if env.done:
                out[i] = env.transcript(doctor.name)
                if on_done:
                    on_done(out[i])
            else:
                still.append((i, env, rng))
        running = still
    return out  # type: ignore[return-value]


def run_groups(
    cases: Sequence[Case],
    doctor: Doctor,
    patient: Patient,
    group_size: int = 1,
    sampling: Sampling | None = None,
    cfg: EnvConfig = EnvConfig(),
    seed: int = 0,
    batch_size: int = 64,
    on_done: Callable[[Transcript], None] | None = None,
) -> list[list[Transcript]]:
    """``group_size`` independent consultations per case, batched across cases and samples.

    ``sampling`` (e.g. ``Sampling(temperature=0.7)``) replaces an LLM doctor's decoding settings
    (``doctor.with_sampling``); rule-based doctors draw from their per-episode RNG. Returns one list per case,
    samples in order; each transcript carries its ``sample`` index.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if sampling is not None:
        if not hasattr(doctor, "with_sampling"):
            raise InputError(f"doctor {doctor.name!r} does not sample from a model; drop the sampling settings")
        doctor = doctor.with_sampling(sampling)
    episodes = [Episode(c, s) for c in cases for s in range(group_size)]
    flat = run_consultations(episodes, doctor, patient, cfg, seed, batch_size, on_done)
    return [flat[i * group_size:(i + 1) * group_size] for i in range(len(cases))]


def run_episodes(
    cases: Sequence[Case],
    doctor: Doctor,
    patient: Patient,
    cfg: EnvConfig = EnvConfig(),
    seed: int = 0,
    batch_size: int = 64,
    on_done: Callable[[Transcript], None] | None = None,
) -> list[Transcript]:
    """One consultation per case (sample 0 of :func:`run_groups`); transcripts in case order."""
    return run_consultations([Episode(c) for c in cases], doctor, patient, cfg, seed, batch_size, on_done)

"""Stage 2 speed: rollout throughput of batched groups vs one consultation at a time, and the reward's model cost.

1. Rollouts: ``--cases`` SynthClinic train cases x G sampled consultations of the doctor ``--model`` (temperature
   0.7, budget 5, FactPatient), played once with every consultation of the step batched together (what ``promed
   grpo`` does: :func:`promed.env.rollout.run_consultations`, batch = cases x G) and once one consultation at a time
   (batch 1). Prints consultations per second of each and the speed-up; both produce the same consultations (checked:
   each episode's sampling is seeded by its own (seed, case, sample)).
2. Reward cost: v(S) evaluations (scorer calls on a fact subset) needed for the SIG of the rollouts. ProMed computes
   each case's Shapley values once, before training (``n_evals`` of the cache record), and every rollout of that
   case reads them (0 evaluations); the reference recomputes them for every rollout. Printed per rollout for a run
   of ``--steps`` x ``--cases-per-step`` x G rollouts over ``--train-cases`` cases.

    python benchmarks/grpo_rollouts.py --model runs/stage1/sft --cases 8
"""

from __future__ import annotations

import argparse
import time

import torch

from promed.data.synthclinic import BayesScorer, generate_cases
from promed.doctor.policy import LLMDoctor
from promed.env.consultation import EnvConfig
from promed.env.rollout import Episode, run_consultations
from promed.llm import load_llm
from promed.patient import FactPatient
from promed.patient.fact import FactPatientConfig
from promed.sig.cache import EstimatorChoice, ShapleyCache
from promed.sig.value import ScorerValue
from promed.types import Sampling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="doctor checkpoint directory")
    ap.add_argument("--cases", type=int, default=8, help="cases per step")
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100, help="training run size for the reward-cost line")
    ap.add_argument("--train-cases", type=int, default=1000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    cases = generate_cases("train", a.cases)
    episodes_n = a.cases * a.group_size  # one generate() call for every running consultation, as promed grpo does
    doctor = LLMDoctor(load_llm(f"hf:{a.model}", device="cpu", gen_batch_size=episodes_n), "policy",
                       Sampling(max_new_tokens=48, temperature=0.7))
    patient = FactPatient.from_config(FactPatientConfig())
    env = EnvConfig(max_questions=5)
    episodes = [Episode(c, s) for c in cases for s in range(a.group_size)]
    run_consultations(episodes[:2], doctor, patient, env, seed=1, batch_size=2)  # warm-up (lazy loads)
    out = {}
    for name, batch in (("batched", len(episodes)), ("one at a time", 1)):
        t0 = time.perf_counter()
        trs = run_consultations(episodes, doctor, patient, env, seed=0, batch_size=batch)
        secs = time.perf_counter() - t0
        out[name] = (secs, trs)
        print(f"{name:>14}: {len(trs)} consultations in {secs:.1f} s = {len(trs) / secs:.2f} /s "
              f"({sum(t.n_outputs for t in trs)} doctor outputs, {sum(t.n_questions for t in trs)} questions)")
    same = sum([(s.text, s.token_ids) for s in x.steps] == [(s.text, s.token_ids) for s in y.steps]
               for x, y in zip(out["batched"][1], out["one at a time"][1]))
    print(f"speed-up {out['one at a time'][0] / out['batched'][0]:.1f}x; identical consultations: {same} of "
          f"{len(episodes)} (a padded batch changes the logits in their last bits, which can flip a sampled token)")

    cache = ShapleyCache(ScorerValue(BayesScorer()), EstimatorChoice("auto"))
    t0 = time.perf_counter()
    evals = [cache.get(c).n_evals for c in cases]
    secs = time.perf_counter() - t0
    per_case = sum(evals) / len(evals)
    rollouts = a.steps * a.cases * a.group_size
    per_case_rollouts = rollouts / a.train_cases
    print(f"Shapley values (exact, Bayes scorer): {per_case:.0f} v(S) evaluations and {secs / len(cases) * 1e3:.1f} ms "
          f"per case")
    print(f"reward cost per rollout over a run of {rollouts} rollouts on {a.train_cases} cases: ProMed "
          f"{min(per_case, per_case * a.train_cases / rollouts):.1f} evaluations amortised (once per case, before "
          f"training; 0 during it) vs the reference's {per_case:.0f} (recomputed per rollout); "
          f"{per_case_rollouts:.2f} rollouts per case")


if __name__ == "__main__":
    main()

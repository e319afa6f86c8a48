"""Stage 0 (SynthClinic only): pretrain the small doctor on generated vignettes, so that it knows medicine.

What: :func:`run_pretrain` trains ``synthclinic-small`` from scratch into a *reactive* doctor: shown a
consultation, it answers at once with the diagnosis the visible facts support. The result is a plain Hugging Face
checkpoint (``hf:<out>``, ``llm:<out>``) that Stage 1 fine-tunes and that can serve as the SIG scorer.

Why: without this stage everything the small doctor knows comes from ~2,000 Stage 1 trajectories and its own
answers sit at chance. SynthClinic can generate any number of train-split cases with exact posteriors: the analogue
of the medical pre-training every real model has had. Three choices carry the stage, each measured
(BENCHMARKS.md, "Pretraining" and "Why Stage 0 is built as it is"):

* **every answer point trained**: after the initial statement, after each reply and after each prefix of a list of
  known facts, each as a short branch of one shared sequence (exact by attention mask and position ids), so one
  sequence carries many answers;
* **the answer names the diagnosis** (``answer_format="name"``): binding a diagnosis to a shuffled letter first
  left the letter at chance;
* **soft labels**: the exact posterior of what each answer point sees (in SynthClinic the gold is a draw from it,
  so both labels share the minimiser; soft targets only remove the noise and train calibration directly).

One job per module:

* :mod:`.config` - :class:`PretrainConfig`, the settings;
* :mod:`.examples` - cases -> rendered consultations with their answer points and posteriors;
* :mod:`.tokens` - examples -> answer-only labels, packed branches, soft targets (forked workers on Linux);
* :mod:`.run` - :func:`run_pretrain`: the model, TRL's trainer through :mod:`promed.train.branches`, resume.
"""

from promed.train.pretrain.config import DEFAULT_ANSWER_FORMAT, PretrainConfig
from promed.train.pretrain.examples import (PretrainExample, answer_text, case_examples, dialogue_state,
                                            pretraining_cases, pretraining_examples, prompt_chat, render_example,
                                            revealed_at_answer_points, sample_subset)
from promed.train.pretrain.run import TOKENIZER_EXAMPLES, PretrainResult, run_pretrain, sft_config
from promed.train.pretrain.tokens import answer_only_labels, build_dataset, known_prefix_points, soft_columns

__all__ = ["DEFAULT_ANSWER_FORMAT", "TOKENIZER_EXAMPLES", "PretrainConfig", "PretrainExample", "PretrainResult",
           "answer_only_labels", "answer_text", "build_dataset", "case_examples", "dialogue_state",
           "known_prefix_points", "pretraining_cases", "pretraining_examples", "prompt_chat", "render_example",
           "revealed_at_answer_points", "run_pretrain", "sample_subset", "sft_config", "soft_columns"]

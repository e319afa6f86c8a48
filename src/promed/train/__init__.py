"""Training: Stage 1 SFT of the doctor on chat trajectories (doctor-only loss) and the ``synthclinic-small`` model.

* :mod:`promed.train.data` - chat JSONL loading/validation (:class:`DataError`) and ``(input_ids, labels)`` masks.
* :mod:`promed.train.small_model` - builds the tiny from-scratch tokenizer + Llama model for SynthClinic.
* :mod:`promed.train.sft` - :func:`run_sft` on TRL's ``SFTTrainer`` (full or LoRA), checkpoints, resume, plots.
"""

from promed.train.data import ChatExample, DataError, load_chat_jsonl, tokenize_with_mask, write_chat_jsonl
from promed.train.sft import SFTResult, SFTRunConfig, run_sft
from promed.train.small_model import SmallModelConfig, build_small_doctor

__all__ = [
    "ChatExample",
    "DataError",
    "SFTResult",
    "SFTRunConfig",
    "SmallModelConfig",
    "build_small_doctor",
    "load_chat_jsonl",
    "run_sft",
    "tokenize_with_mask",
    "write_chat_jsonl",
]

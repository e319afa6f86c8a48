"""``promed view`` and ``promed chat`` settings (the commands' options are generated from these fields; nothing heavy
imported here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from promed.errors import InputError

LOOPBACK = "127.0.0.1"
ROLES = ("doctor", "patient")
DOCTOR_HELP = ("A doctor that asks (greedy-eig, random-<k>, or a trained one: llm:<checkpoint dir>). As the doctor, "
               "your consultation is compared with greedy-eig and this one; as the patient, this doctor asks you.")


@dataclass(frozen=True)
class ViewConfig:
    """Where the viewer listens."""

    host: str = field(default=LOOPBACK, metadata={"help": "Address to listen on. The default serves this machine "
                                                          "only; 0.0.0.0 serves the whole network (no "
                                                          "authentication: anyone who can connect reads the runs)."})
    port: int = field(default=8765, metadata={"help": "Port to listen on (0: any free port; the URL is printed)."})
    live: bool = field(default=False, metadata={"help": "Also serve live consultations on SynthClinic cases: you "
                                                        "are the doctor (compared with greedy-eig and --doctor) or "
                                                        "the patient (a doctor asks you; run directories are then "
                                                        "optional)."})
    doctor: str = field(default="greedy-eig", metadata={"help": "With --live: " + DOCTOR_HELP})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be between 0 and 65535, got {self.port}")
        if not self.host.strip():
            raise InputError("--host must not be empty")
        if self.doctor != "greedy-eig" and not self.live:
            raise InputError("--doctor is for live consultations: add --live")


@dataclass(frozen=True)
class ChatConfig:
    """A live consultation in the terminal (``promed chat``)."""

    role: Literal["doctor", "patient"] = field(
        default="doctor", metadata={"help": "doctor: you ask the simulated patient and answer; patient: the doctor "
                                            "asks and you reply from your script (the case's facts)."})
    case: str = field(default="", metadata={"help": "SynthClinic case id, e.g. sc-test-00000 (default: one drawn "
                                                    "with --seed)."})
    split: str = field(default="test", metadata={"help": "SynthClinic split: train, val or test."})
    doctor: str = field(default="greedy-eig", metadata={"help": DOCTOR_HELP})
    seed: int = field(default=0, metadata={"help": "Seed of the consultations (and of the case drawn without "
                                                   "--case)."})

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"--role must be doctor or patient, got {self.role!r}")

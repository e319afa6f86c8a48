"""``promed view`` settings (the command's options are generated from these fields; nothing heavy imported here)."""

from __future__ import annotations

from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ViewConfig:
    """Where the viewer listens."""

    host: str = field(default=LOOPBACK, metadata={"help": "Address to listen on. The default serves this machine "
                                                          "only; 0.0.0.0 serves the whole network (no "
                                                          "authentication: anyone who can connect reads the runs)."})
    port: int = field(default=8765, metadata={"help": "Port to listen on (0: any free port; the URL is printed)."})
    live: bool = field(default=False, metadata={"help": "Also serve live consultations: you are the doctor of a "
                                                        "SynthClinic case, compared with greedy-eig (run "
                                                        "directories are then optional)."})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be between 0 and 65535, got {self.port}")
        if not self.host.strip():
            raise ValueError("--host must not be empty")

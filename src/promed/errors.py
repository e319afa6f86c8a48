"""The one exception type for bad input: the only error the CLI maps to exit code 2.

Validators (config ``__post_init__``), loaders (cases, trajectories, questions, settings files) and spec parsers
(model, doctor, scorer specs) raise :class:`InputError` (or a subclass naming what was bad: ``DataError``,
``SpecError``) before a run writes anything. Every other exception is a bug or an environment failure: the CLI
reports it as an internal error (exit 1; ``promed --debug`` shows its traceback), or a server failure (exit 3).

It subclasses ``ValueError`` so that code and tests written against ``ValueError`` keep working; the reverse does
not hold: a plain ``ValueError``, ``KeyError`` or ``IndexError`` raised deep in a run is *not* bad input.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from the user (an option, a settings file, a data file, a model spec); the message names it."""

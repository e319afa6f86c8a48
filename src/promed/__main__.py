"""``python -m promed`` runs the ``promed`` command."""

from promed.cli import app

if __name__ == "__main__":
    app()

"""``python -m promed`` runs the ``promed`` command."""

from promed.cli import app

if __name__ == "__main__":
    app(prog_name="promed")  # help and usage say 'promed', as the installed command does

"""The local web viewer over run directories (``promed view``) and live consultations (``promed view --live``,
``promed chat``).

* :mod:`~promed.view.runs` - which runs the given directories hold (directory listings only: starts at once);
* :mod:`~promed.view.files` - read-only, torn-line-tolerant reading, the file cache, path confinement;
* :mod:`~promed.view.consultations`, :mod:`~promed.view.curves` - a doctor's transcripts and a training log as the
  pages use them, read with the evaluation's own readers and metrics;
* :mod:`~promed.view.store` - lazy, cached access for the pages; problems become messages;
* :mod:`~promed.view.pages` - the numbers each page lays out (SIG bars, the Shapley ranking);
* :mod:`~promed.view.app` - the FastAPI routes and templates (why FastAPI: see there);
* :mod:`~promed.view.server` - binding, the start-up message, uvicorn;
* :mod:`~promed.view.session` - live consultations in both roles (you are the doctor; you are the patient, your
  free-text replies guarded and matched to fact ids), one engine for the browser and the terminal;
* :mod:`~promed.view.live`, :mod:`~promed.view.live_routes` - those sessions in the browser (``--live``);
* :mod:`~promed.view.chat` - the same in the terminal (``promed chat``; rich output, injectable streams).

Imports flow downward only (view -> eval, sig, env, doctor, patient, data, types, io); only :mod:`promed.cli`
imports this package.
"""

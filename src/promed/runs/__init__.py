"""The runners: whole commands and stages wired from the algorithm packages (above them, below the CLI).

* :mod:`promed.runs.sig` - ``promed sig``: :class:`~promed.runs.sig.SigRunConfig`, :func:`~promed.runs.sig.run_sig`.
* :mod:`promed.runs.mcts` - ``promed mcts``: :class:`~promed.runs.mcts.MctsRunConfig`,
  :func:`~promed.runs.mcts.run_mcts` (resumable trajectory export).
* :mod:`promed.runs.sft` - ``promed sft``: :class:`~promed.runs.sft.SftCommandConfig` (``SFTRunConfig`` plus its
  input and output paths), :func:`~promed.runs.sft.run_sft_command`.
* :mod:`promed.runs.stage1` - ``promed stage1``: :class:`~promed.runs.stage1.Stage1Config`,
  :func:`~promed.runs.stage1.run_stage1` (MCTS -> SFT -> evaluation).
* :mod:`promed.runs.patient` - ``promed patient``: :class:`~promed.runs.patient.PatientRunConfig`,
  :func:`~promed.runs.patient.run_patient` (a patient simulator answers a file of questions, scored).

``promed eval``'s runner is :func:`promed.eval.evaluate.run_eval` (its config, :class:`promed.config.EvalConfig`).
Each runner writes ``manifest.json`` with the full resolved config (nested stage configs included).
"""

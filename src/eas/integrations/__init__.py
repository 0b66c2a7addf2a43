"""eas where evaluations already run: evaluator outputs, Hugging Face datasets, LM-Polygraph.

* ``evaluators``: the per-sample files of lm-evaluation-harness (``lm_eval --log_samples``)
  and lighteval (its details files) as records, the evaluator's metrics kept as columns;
* ``layouts``: common reasoning-trace layouts (chat ``messages``, ``problem`` +
  ``generations``, ``prompt``/``completion``) turned into records;
* ``hf_datasets``: Hugging Face datasets in (a ``save_to_disk`` folder, a folder of
  Parquet/Arrow shards, ``NAME[:CONFIG]:SPLIT`` from the local cache; streamed) and out;
* ``summary``: the AUROC of EAS and every baseline for the evaluator's wrong answers;
* ``cli``: the ``--from``/``--layout`` options and the dataset output of ``eas score``
  and ``eas select``;
* ``lm_polygraph``: a stat calculator and estimators that LM-Polygraph loads by module path.

Each reads its library only inside functions: the optional extras stay optional.
"""

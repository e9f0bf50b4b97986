"""The orchestration layer: one function per step of the pipeline, from a composed config.

Every entry point goes through here: each DVC stage calls one function
(`demo.generate_demo`, `data.prepare_data`, `features.featurize_data`,
`model.fit_model`, `model.evaluate_model`, `export.export_model`), the Hydra
entry calls `model.train_and_evaluate` for each run of a sweep, and the `spira`
command calls `calibrate.calibrate_noise`, `serving.predict_files` and
`serving.serve_model`. The domain packages below (demo, data, features,
augment, training, evaluation) take plain arguments and know nothing of stage
outputs or run folders. One module per data stage (and one for the model stages), so each DVC
stage depends on the orchestration code it runs and no more
(tests/test_dvc_dependencies.py checks dvc.yaml against the imports).
"""

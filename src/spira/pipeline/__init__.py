"""The orchestration layer: one function per step of the pipeline, from a composed config.

Every entry point goes through here: each DVC stage calls one function
(`data.generate_demo`, `data.prepare_data`, `data.featurize_data`,
`model.fit_model`, `model.evaluate_model`, `export.export_model`), the Hydra
entry calls `model.train_and_evaluate` for each run of a sweep, and the `spira`
command calls the same functions and `serving.predict_files` / `serving.serve_model`. The domain packages below (demo, data, features,
augment, training, evaluation) take plain arguments and know nothing of stage
outputs or run folders. One module per group of stages, so each DVC stage
depends on the orchestration code it runs and no more.
"""

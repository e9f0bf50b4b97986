"""A trained model outside the pipeline: the exported folder, prediction and the HTTP service.

`contract` owns the export folder (`model.onnx`, `model.json`, `MODEL_CARD.md`);
`export` writes the network as ONNX (needs torch); `card` writes the model card;
`predict` scores audio files with onnxruntime, the pipeline's own decoder and
the numpy front end (no torch, no checkpoint); `service` is the FastAPI app around it.
"""

"""Other model servers, run for real on 127.0.0.1 (notebook 07): MLflow, TorchServe, TensorFlow.

- ``mlflow_serve``: save the churn pipeline as an MLflow model; ``MlflowServer`` runs
  ``mlflow models serve --env-manager local``.
- ``torchserve``: a TorchScript model, its handler, the ``.mar`` archive; ``TorchServeServer``
  runs TorchServe (Java) with its inference, management and metrics APIs on 127.0.0.1.
- ``tensorflow``: a Keras model exported as a SavedModel; ``TFServingProcess`` runs
  ``tf_serving_app`` (TF Serving's REST API over its signature) under uvicorn.

Importing any of these modules loads no web framework, model library or crypto: each imports
them where it uses them (``tests/integration/test_processes.py`` checks).
"""

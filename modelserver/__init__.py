"""A local stand-in for TensorFlow Serving: the same gRPC API over a SavedModel repository.

Run it with `python -m modelserver --model-repository DIR`. It serves every
SavedModel found at `DIR/<ModelName>/<version>/` through
`tensorflow.serving.PredictionService` (Predict, GetModelMetadata) and
`tensorflow.serving.ModelService` (GetModelStatus), so consumers talk to it
exactly as they talk to `tensorflow/serving` in the cloud.
"""

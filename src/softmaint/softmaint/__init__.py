"""Onboard node suite: sensor ingestion, student inference (onnxruntime), maintenance agent, bringup."""

"""
Onboard node suite of softmaint.

Sensor ingestion, student inference (onnxruntime), maintenance agent, bringup.
"""

"""Offline tool: teacher training, cross-modal distillation into the student, calibration, ONNX export, evaluation reports."""

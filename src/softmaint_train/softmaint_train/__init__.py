"""
Offline tool of softmaint.

Teacher training, cross-modal distillation into the student, calibration, ONNX export and
evaluation reports. Torch lives here only; the robot runs the exported ONNX student.
"""

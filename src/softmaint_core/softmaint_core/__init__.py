"""ROS-free core of softmaint: specs, windowing, health, policy, calibration sets, the log."""

"""
MuJoCo simulator of a degrading soft continuum arm.

Dataset generator, rosbag export and the live sim robot node.
"""

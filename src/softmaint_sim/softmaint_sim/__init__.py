"""MuJoCo simulator of a degrading soft continuum arm: dataset generator, rosbag export and the live sim robot node."""

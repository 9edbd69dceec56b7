"""Bag tools for machines without rosbag2: a player, a recorder, offline evaluation."""

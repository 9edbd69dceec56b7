"""Benchmarks of the onboard node suite under field sensor load."""

"""Training: the loop behind driver.py, the solvers, checkpoints, gradient checks, the
monitor page and a run's files."""

"""Parallel infrastructure: the communicator owner, decomposition, halo exchange."""

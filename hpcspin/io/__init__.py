"""HDF5 files: parallel trajectories, checkpoints, datasets; names in :mod:`keys`.

The only package that imports h5py.
"""

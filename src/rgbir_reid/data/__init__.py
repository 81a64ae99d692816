"""Dataset readers, splits, the HDF5 cache, samplers and image transforms."""

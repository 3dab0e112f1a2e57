"""Pure image-processing steps of the segmentation pipeline (no I/O, no Redis)."""

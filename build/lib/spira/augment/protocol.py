"""SPIRA's noise-insertion protocol as numbers, without torch: the demo cohort (numpy only)
and the augmentation both read them, so generating the demo does not load the training stack."""

# SPIRA's measured min and max peak of the noise-only stretches of its patient files.
SPIRA_NOISE_PEAK_RANGE = (0.033474047, 0.19233719)

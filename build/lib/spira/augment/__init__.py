"""On-the-fly waveform augmentation: SPIRA's ward-noise insertion and audiomentations."""

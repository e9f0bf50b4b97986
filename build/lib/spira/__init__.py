"""SPIRA continuous-training pipeline: respiratory-insufficiency detection from voice."""

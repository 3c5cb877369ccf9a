"""Continual language learning: CLL-CLIP with TEIR and its baselines."""

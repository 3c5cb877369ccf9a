"""mlclip: teach an English CLIP new languages without retraining it."""

__version__ = "0.1.0"

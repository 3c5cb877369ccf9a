"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""


class MlclipError(Exception):
    """Bad input, a missing file, an artifact that does not match its schema."""


class ArtifactError(MlclipError):
    """An artifact file is missing, unreadable or does not match its schema."""


class DatasetError(MlclipError):
    """A data set root is missing files or has an unexpected layout."""

"""The one exception the data package raises for a user's mistake or a missing dataset."""


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says what to do about it."""

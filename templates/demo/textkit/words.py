"""Splitting text into words."""


def words(text: str) -> list[str]:
    """The words of `text`, split on whitespace."""
    return text.split()

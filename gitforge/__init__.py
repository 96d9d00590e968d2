"""gitforge: turn the phases of a BACKLOG.md into verified, merged git commits."""

__version__ = "0.1.0"

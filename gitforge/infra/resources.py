"""Packaged data: the top-level hooks/ and templates/ folders, shipped in the wheel as
gitforge/_data/ (see pyproject.toml) and read from the source tree in a development checkout."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent  # the gitforge package folder


def data_dir(name: str) -> Path:
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gitforge's {name}/ folder is missing from this installation ({_PKG})")


def template(*parts: str) -> Path:
    return data_dir("templates").joinpath(*parts)

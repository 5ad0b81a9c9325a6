"""Argument types shared by the command-line tools (``waybill`` and ``python -m bench``)."""

from __future__ import annotations

import argparse


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None


def positive_float(text: str) -> float:
    """A number above 0."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def non_negative_float(text: str) -> float:
    """A number of 0 or more."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def positive_int(text: str) -> int:
    """An integer of 1 or more."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def positive_floats(text: str) -> tuple[float, ...]:
    """A comma-separated, non-empty list of numbers above 0 (``50,200``)."""
    values = tuple(positive_float(part) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one value, e.g. 50,200")
    return values


def positive_ints(text: str) -> tuple[int, ...]:
    """A comma-separated, non-empty list of integers of 1 or more (``32,128``)."""
    values = tuple(positive_int(part) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one value, e.g. 32,128")
    return values

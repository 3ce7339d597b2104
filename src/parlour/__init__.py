"""Parlour: a self-hosted, drop-in replacement for Twilio Programmable Video.

The package root holds only the version; nothing heavy is imported here.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

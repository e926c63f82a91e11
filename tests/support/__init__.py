"""Helpers the tests import (classes and functions, not fixtures: those live in the
conftest.py files): labs on their own port bases, lab processes on port 0, a fault proxy."""

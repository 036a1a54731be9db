"""Helpers for the batch tests (a stack factory the batch's workers import by name)."""

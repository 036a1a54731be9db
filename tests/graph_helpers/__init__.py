"""Helpers for the graph tests: an in-test fake stack and the kill-and-resume subprocess."""

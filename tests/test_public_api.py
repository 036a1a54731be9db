"""The curated public API: every exported name resolves, and importing stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hybridstack


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert hybridstack.__all__ == sorted(hybridstack.__all__)
    for name in hybridstack.__all__:
        assert getattr(hybridstack, name) is not None, name


def test_unknown_attribute_is_a_clear_error() -> None:
    with pytest.raises(AttributeError, match="DoesNotExist"):
        hybridstack.DoesNotExist  # noqa: B018


def test_import_does_not_load_heavy_sdks() -> None:
    code = (
        "import sys, hybridstack, hybridstack.types, hybridstack.errors, hybridstack.catalog, "
        "hybridstack.providers, hybridstack.routing;"
        "print(','.join(m for m in ('openai','anthropic','dashscope','langgraph','langchain_core')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_py_typed_marker_ships() -> None:
    from importlib.resources import files

    assert files("hybridstack").joinpath("py.typed").is_file()

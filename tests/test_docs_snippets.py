"""Every ```python block in docs/*.md runs, offline, against the emulator.

Blocks of one page run in order and share one namespace (a page builds up state) and
one event loop, so a block may use top-level ``await`` (compiled with
``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``). A block whose first line is
``# not executed: <reason>`` is skipped: use it only for snippets that need real keys
or a real server, and show the offline equivalent next to it.

``toml`` blocks titled ``hybridstack.toml``, ``*catalog.toml`` or ``emulator.toml``
are loaded with the loader they document, so a config or catalog example cannot drift
from the format either.

The network guard and the key scrubbing of ``tests/conftest.py`` apply: a snippet that
tried to reach a real provider would fail here.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
SKIP_MARKER = "# not executed:"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})(?P<info>[^`\n]*)$")


@dataclass(frozen=True)
class Block:
    page: str
    index: int  # position among the page's blocks of the same language
    line: int  # 1-based line of the opening fence
    lang: str
    info: str
    code: str

    @property
    def title(self) -> str | None:
        found = re.search(r'title="([^"]*)"', self.info)
        return found.group(1) if found else None


def parse_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of one Markdown file (indented fences in lists included)."""
    blocks: list[Block] = []
    counts: dict[str, int] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, ticks, info = opening["indent"], opening["ticks"], opening["info"].strip()
        lang = info.split()[0] if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing["ticks"][0] == ticks[0]
                and len(closing["ticks"]) >= len(ticks)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        index = counts.get(lang, 0)
        counts[lang] = index + 1
        blocks.append(
            Block(path.name, index, i + 1, lang, info, textwrap.dedent("\n".join(body)) + "\n")
        )
        i = j + 1
    return blocks


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _cases(lang: str) -> list[Any]:
    cases = []
    for page in _pages():
        for block in parse_blocks(page):
            if block.lang == lang:
                cases.append(pytest.param(block, id=f"{page.name}[{block.index}]"))
    return cases


# --- running a page's python blocks in order -------------------------------------------


@dataclass
class _PageRun:
    """The shared state of one page: its namespace, its event loop, how far it got."""

    loop: asyncio.AbstractEventLoop
    namespace: dict[str, Any] = field(default_factory=dict)
    done: int = 0  # python blocks executed (or skipped) so far
    failed: str | None = None  # the first failing block, for the blocks after it
    #: Known-issue blocks whose assertion failed: block index -> the failure.
    known: dict[int, str] = field(default_factory=dict)


#: Blocks that document intended behaviour the code does not have yet: (page, python
#: block index) -> the bug. Such a block may fail only with an AssertionError, and is
#: reported as xfail; once it passes, the test fails until the entry is removed.
KNOWN_ISSUES: dict[tuple[str, int], str] = {}


_RUNS: dict[str, _PageRun] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_page_loops() -> Any:
    yield
    for run in _RUNS.values():
        loop = run.loop
        try:
            # Server-side tasks a snippet left behind (a slow simulated reply whose
            # client was cancelled): cancel them rather than let the loop drop them.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:

                async def _drain(tasks: set[asyncio.Task[Any]] = pending) -> None:
                    await asyncio.gather(*tasks, return_exceptions=True)

                loop.run_until_complete(_drain())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
    _RUNS.clear()


def _execute(block: Block, run: _PageRun) -> None:
    filename = f"docs/{block.page}"
    # Pad with blank lines so tracebacks point at the Markdown line.
    source = "\n" * block.line + block.code
    code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.set_event_loop(run.loop)
        try:
            run.loop.run_until_complete(eval(code, run.namespace))
        finally:
            asyncio.set_event_loop(None)
    else:
        exec(code, run.namespace)


def _is_skipped(block: Block) -> str | None:
    first = block.code.lstrip("\n").splitlines()[0] if block.code.strip() else ""
    if first.strip().startswith(SKIP_MARKER):
        return first.strip()[len(SKIP_MARKER) :].strip() or "no reason given"
    return None


def _run_through(block: Block) -> None:
    """Run the page's python blocks up to and including ``block``, each exactly once."""
    run = _RUNS.get(block.page)
    if run is None:
        run = _RUNS[block.page] = _PageRun(
            loop=asyncio.new_event_loop(), namespace={"__name__": "__docs__"}
        )
    blocks = [b for b in parse_blocks(DOCS / block.page) if b.lang == "python"]
    while run.failed is None and run.done <= block.index:
        current = blocks[run.done]
        run.done += 1
        if _is_skipped(current) is not None:
            continue
        try:
            _execute(current, run)
        except AssertionError as error:
            if (current.page, current.index) not in KNOWN_ISSUES:
                run.failed = f"docs/{current.page}:{current.line}"
                raise
            # The state a known issue leaves is fine for the blocks after it.
            run.known[current.index] = f"{type(error).__name__}: {error}"
        except Exception:
            run.failed = f"docs/{current.page}:{current.line}"
            raise
    if run.failed is not None and run.done <= block.index:
        pytest.fail(f"not run: an earlier block of this page failed ({run.failed})")


@pytest.mark.parametrize("block", _cases("python"))
def test_python_snippet(block: Block) -> None:
    reason = _is_skipped(block)
    _run_through(block)
    if reason is not None:
        pytest.skip(f"not executed: {reason}")
    issue = KNOWN_ISSUES.get((block.page, block.index))
    if issue is not None:
        failure = _RUNS[block.page].known.get(block.index)
        if failure is None:
            pytest.fail(f"known issue fixed, remove it from KNOWN_ISSUES: {issue}")
        pytest.xfail(f"known issue: {issue} ({failure})")


# --- toml blocks that name the file they show -------------------------------------------


def _titled_toml() -> list[Any]:
    return [
        case
        for case in _cases("toml")
        if case.values[0].title is not None
        and (
            case.values[0].title == "hybridstack.toml"
            or case.values[0].title.endswith("catalog.toml")
            or case.values[0].title == "emulator.toml"
        )
    ]


@pytest.mark.parametrize("block", _titled_toml())
def test_toml_example_loads(block: Block, tmp_path: Path) -> None:
    title = block.title
    assert title is not None
    path = tmp_path / title
    path.write_text(block.code, encoding="utf-8")
    if title == "hybridstack.toml":
        from hybridstack.config import load_config

        config = load_config(path)
        config.stack_options()  # builds every settings object: a bad key fails here
    elif title == "emulator.toml":
        from hybridstack.testing import EmulatorConfig

        EmulatorConfig.from_file(path)
    else:
        from hybridstack.catalog import Catalog

        Catalog.default().with_file(path)


# --- the parser itself ----------------------------------------------------------------


def test_parser_finds_blocks_and_skip_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n- item\n\n    ```python\n    y = x + 1\n    ```\n\n"
        "```python\n# not executed: needs a real key\nboom()\n```\n\n````md\n```python\n"
        'inner = 1\n```\n````\n\n```toml title="hybridstack.toml"\n[routing]\n```\n',
        encoding="utf-8",
    )
    blocks = parse_blocks(page)
    python = [b for b in blocks if b.lang == "python"]
    assert [b.code for b in python] == ["x = 1\n", "y = x + 1\n", python[2].code]
    assert _is_skipped(python[2]) == "needs a real key"
    assert _is_skipped(python[0]) is None
    toml = [b for b in blocks if b.lang == "toml"]
    assert toml[0].title == "hybridstack.toml"


def test_docs_have_python_snippets() -> None:
    assert _cases("python"), "no ```python blocks found under docs/"


# --- links between pages ----------------------------------------------------------------

#: Pages other people write; a link to one is checked once it exists.
_OWNED_ELSEWHERE = ("cli.md", "notebooks/")
_LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")


def _slug(heading: str) -> str:
    """Python-Markdown's default toc slug (what mkdocs uses for anchors)."""
    import unicodedata

    text = re.sub(r"<[^>]+>|`", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not in_fence:
            anchors.add(_slug(heading.group(1)))
    return anchors


def _links() -> list[Any]:
    cases = []
    for page in _pages():
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in sorted(set(_LINK.findall(text))):
            cases.append(pytest.param(page, target, id=f"{page.name}->{target}"))
    return cases


@pytest.mark.parametrize(("page", "target"), _links())
def test_internal_link_resolves(page: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    path = (page.parent / file_part) if file_part else page
    if not path.exists():
        if file_part.startswith(_OWNED_ELSEWHERE):
            pytest.skip(f"{file_part} is written by someone else and does not exist yet")
        pytest.fail(f"{page.name}: link to {target!r}: no such file")
    if anchor and path.suffix == ".md":
        assert anchor in _anchors(path), (
            f"{page.name}: link to {target!r}: no heading with anchor #{anchor} in {path.name}"
        )


def test_mkdocs_nav_lists_every_page() -> None:
    import yaml

    config = yaml.safe_load((DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8"))

    def paths(items: Any) -> list[str]:
        found: list[str] = []
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found += paths(value) if isinstance(value, list) else [value]
        return found

    nav = paths(config["nav"])
    missing = [p for p in nav if not (DOCS / p).exists() and not p.startswith(_OWNED_ELSEWHERE)]
    assert not missing, f"mkdocs.yml names pages that do not exist: {missing}"
    unlisted = [p.name for p in _pages() if p.name not in nav]
    assert not unlisted, f"pages missing from the mkdocs.yml nav: {unlisted}"

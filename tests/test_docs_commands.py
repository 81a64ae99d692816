"""Every `snakemake` and `make` command the README and docs/ show runs as written, at least dry.

Commands are taken from the Markdown of ``README.md`` and ``docs/**/*.md``: each line of a
fenced code block (backslash continuations joined, comments dropped) and each inline code span
that starts with ``snakemake``, ``.venv/bin/snakemake`` or ``make``. Then:

* ``make <targets>`` must parse: ``make -n <targets>`` exits 0 (nothing is built).
* ``snakemake ...`` must parse with Snakemake's own argument parser, and then dry-runs
  (``-n`` added) from the repository root, as a reader would type it, with the default
  workflow profile Snakemake finds there. Three things differ from the reader's run:

  - ``--directory`` points at a temporary folder holding a copy of ``config.yaml``, so that no
    ``results/`` or ``.snakemake/`` appears in the repository;
  - placeholder paths: a config file named by ``--configfile`` is read and every string
    starting with ``/data/`` (the docs' and paper configs' placeholder dataset roots) is
    pointed into a temporary ``data/`` folder, where ``SYSU-MM01`` holds the real SYSU-MM01
    sample (``../shared/data``) with the official ``evaluation/`` files, and other roots do
    not exist (a dry run lists only the files that exist). ``my.yaml``, the README's example,
    is the first YAML block of the README with a ``datasets:`` key;
  - ``--report`` and ``--unlock`` are not dry-runs: ``--unlock`` runs in the temporary folder,
    ``--report`` (which needs a finished run) is only parsed.

All dry runs share one temporary folder and run two at a time, once per distinct plan
(commands that differ only in ``--cores`` dry-run once; each is still parsed); the whole test
stays under a minute on 2 cores.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SHARED_DATA

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^([ \t]*)```([^\n`]*)\n(.*?)^\1```", re.S | re.M)
INLINE = re.compile(r"`((?:\.venv/bin/)?snakemake [^`]+|make [a-z][\w-]*(?: [a-z][\w-]*)*)`")
SNAKEMAKE_NAMES = ("snakemake", ".venv/bin/snakemake")
PLACEHOLDER_ROOT = "/data/"
# Options after which Snakemake reads a file or folder path.
PATH_OPTIONS = ("--configfile", "--configfiles")


def _fenced_commands(text: str) -> list[str]:
    commands = []
    for match in FENCE.finditer(text):
        lang, body = match.group(2).strip(), match.group(3)
        if lang not in ("", "bash", "sh", "shell", "console"):
            continue
        joined = re.sub(r"\\\n", " ", body)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            if not line:
                continue
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if words and (words[0] in SNAKEMAKE_NAMES or words[0] == "make"):
                commands.append(shlex.join(words))
    return commands


def doc_commands() -> list[tuple[str, str]]:
    """``(file, command)`` for every snakemake / make command in the README and docs/, in order."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        commands = _fenced_commands(text)
        without_fences = FENCE.sub("", text)
        commands += [shlex.join(shlex.split(m.group(1))) for m in INLINE.finditer(without_fences)]
        rel = str(path.relative_to(REPO))
        found += [(rel, c) for c in commands]
    return found


def readme_example_config() -> str:
    """The README's ``my.yaml``: its first YAML block with a ``datasets:`` key."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        if match.group(2).strip() == "yaml" and "datasets" in (yaml.safe_load(match.group(3)) or {}):
            return match.group(3)
    raise AssertionError("README.md has no YAML block with datasets: (the my.yaml it runs)")


def _placeholder_data(root: Path) -> Path:
    """``root/data``: SYSU-MM01 = the real sample with the official evaluation files."""
    data = root / "data"
    sysu = data / "SYSU-MM01"
    sysu.mkdir(parents=True)
    sample = SHARED_DATA / "sysu_mm01_sample"
    for entry in sample.iterdir():
        (sysu / entry.name).symlink_to(entry)
    (sysu / "evaluation").symlink_to(SHARED_DATA / "sysu_mm01_protocol" / "evaluation")
    return data


def _point_placeholders(value, data: Path):
    if isinstance(value, dict):
        return {k: _point_placeholders(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_point_placeholders(v, data) for v in value]
    if isinstance(value, str) and value.startswith(PLACEHOLDER_ROOT):
        return str(data / value[len(PLACEHOLDER_ROOT):])
    return value


class Workspace:
    """The temporary folder the dry runs share: a workdir with config.yaml, placeholder data, configs."""

    def __init__(self, root: Path):
        self.workdir = root / "work"
        self.workdir.mkdir()
        shutil.copy(REPO / "config.yaml", self.workdir / "config.yaml")
        self.data = _placeholder_data(root)
        self.configs = root / "configs"
        self.configs.mkdir()
        self.sources = {"my.yaml": readme_example_config()}

    def config(self, name: str) -> str:
        """A config file of the docs, its placeholder roots pointed into the temporary data folder."""
        source = REPO / name
        text = self.sources.get(name) or (source.read_text(encoding="utf-8") if source.is_file() else None)
        if text is None:
            raise AssertionError(f"the docs run --configfile {name}, which is neither in the repository nor a known example")
        out = self.configs / name.replace("/", "__")
        out.write_text(yaml.safe_dump(_point_placeholders(yaml.safe_load(text), self.data), sort_keys=False))
        return str(out)

    def argv(self, words: list[str]) -> tuple[list[str], str]:
        """The snakemake arguments to run for a documented command, and how it is checked."""
        args = list(words[1:])
        for i, word in enumerate(args[:-1]):
            if word in PATH_OPTIONS:
                args[i + 1] = self.config(args[i + 1])
        if "--directory" not in args and "-d" not in args:
            args += ["--directory", str(self.workdir)]
        if "--report" in args:
            return args, "parse"
        if "--unlock" in args or "--lint" in args:
            return args, "run"
        if "-n" not in args and "--dry-run" not in args and "--dryrun" not in args:
            args.append("-n")
        return args, "run"


def _parses(args: list[str]) -> str | None:
    """Snakemake's own argument parser's complaint about ``args``, or None."""
    from snakemake.cli import get_argument_parser

    try:
        get_argument_parser().parse_args(args)
    except SystemExit:
        return "Snakemake's argument parser refused it"
    return None


def _plan_key(args: list[str]) -> tuple[str, ...]:
    """``args`` without ``--cores N`` and the dry-run flag: what decides a dry run's plan."""
    key, skip = [], False
    for word in args:
        if skip:
            skip = False
        elif word in ("--cores", "-c"):
            skip = True
        elif word not in ("-n", "--dry-run", "--dryrun"):
            key.append(word)
    return tuple(key)


def _run(args: list[str]) -> str | None:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        return f"exit {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}"
    return None


def _make(targets: list[str]) -> str | None:
    proc = subprocess.run(["make", "-n", *targets], cwd=REPO, capture_output=True, text=True, timeout=60)
    return None if proc.returncode == 0 else f"make -n exit {proc.returncode}: {proc.stderr[-2000:]}"


def test_docs_show_the_commands_a_reader_needs():
    commands = {c for _, c in doc_commands()}
    # The README's quick start and the paper runs; a broken extraction would find none of them.
    for expected in ["make run", "make test",
                     ".venv/bin/snakemake --cores all --configfile workflow/configs/sysu_mm01.yaml",
                     ".venv/bin/snakemake --workflow-profile profiles/slurm --configfile workflow/configs/sysu_mm01.yaml"]:
        assert expected in commands, (expected, sorted(commands))


def test_extraction_joins_continuations_and_drops_comments():
    text = "```bash\n.venv/bin/snakemake --cores all \\\n  --configfile x.yaml   # a comment\nls -l\n```\n"
    assert _fenced_commands(text) == [".venv/bin/snakemake --cores all --configfile x.yaml"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_every_documented_command_dry_runs_or_parses(tmp_path, shared_data):
    workspace = Workspace(tmp_path)
    checks = {}  # one check per distinct command, named by the pages that show it
    for page, command in doc_commands():
        checks.setdefault(command, []).append(page)
    failures = {}
    runs = {}
    for command in checks:
        words = shlex.split(command)
        if words[0] == "make":
            problem = _make(words[1:])
            if problem:
                failures[command] = problem
            continue
        args, how = workspace.argv(words)
        problem = _parses(args)
        if problem:
            failures[command] = problem
        elif how == "run":
            runs[command] = args
    # Commands that differ only in --cores plan the same dry run: run it once for all of them.
    distinct = {}
    for command, args in runs.items():
        distinct.setdefault(_plan_key(args), []).append(command)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for commands, problem in zip(distinct.values(), pool.map(_run, (runs[c[0]] for c in distinct.values()))):
            if problem:
                failures.update({c: problem for c in commands})
    assert not failures, "\n\n".join(f"{c}  ({', '.join(sorted(set(checks[c])))}): {p}" for c, p in failures.items())


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_every_relative_link_of_the_docs_names_a_file_that_exists():
    broken = []
    for path in DOCS:
        for match in LINK.finditer(path.read_text(encoding="utf-8")):
            target = match.group(1)
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
    assert not broken, broken

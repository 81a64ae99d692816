"""A full disk, a read-only or unwritable folder, or a file where a folder belongs: writing an
output stops with one message naming the path, and leaves neither the output nor its temporary
file. Tests run as root here, which ignores chmod, so the errors are raised by monkeypatched
system calls (as the kernel would raise them)."""

from __future__ import annotations

import errno
import types
from pathlib import Path

import pytest

import rgbir_reid.io as rio
from rgbir_reid.io import OutputWriteError, atomic_output, save_torch, write_json
from rgbir_reid.scripting import error_message, run_script


def _raising(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, __import__("os").strerror(code), str(args[0]) if args else None)
    return fail


@pytest.mark.parametrize("code, reason", [
    (errno.ENOSPC, "no space left on device"),
    (errno.EDQUOT, "disk quota exceeded"),
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
])
def test_write_error_names_the_output_and_leaves_nothing(code, reason, tmp_path):
    out = tmp_path / "results" / "metrics.json"
    with pytest.raises(OutputWriteError) as excinfo:
        with atomic_output(out) as tmp:
            tmp.write_text("{\"half\": ")
            _raising(code)(tmp)
    assert str(excinfo.value) == f"cannot write {out}: {reason}"
    assert excinfo.value.errno == code and isinstance(excinfo.value, OSError)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("code, reason", [(errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left on device")])
def test_failed_rename_leaves_nothing(code, reason, tmp_path, monkeypatch):
    monkeypatch.setattr(rio.os, "replace", _raising(code))
    out = tmp_path / "table.csv"
    with pytest.raises(OutputWriteError, match=f"cannot write {out}: {reason}"):
        write_json({"a": 1}, out)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_saving_torch_names_the_output(tmp_path, monkeypatch):
    """save_torch writes through a Python file object: a full disk is an OSError, not torch's RuntimeError."""
    torch = pytest.importorskip("torch")
    real_open = open

    class FullDisk:
        def __init__(self, path, mode):
            self.f, self.written = real_open(path, mode), 0

        def write(self, data):
            if self.written > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(rio, "open", FullDisk, raising=False)
    out = tmp_path / "generator.pt"
    with pytest.raises(OutputWriteError, match=f"cannot write {out}: no space left on device"):
        save_torch({"w": torch.zeros(1000)}, out)
    assert list(tmp_path.iterdir()) == []


def test_file_where_a_folder_belongs_is_named(tmp_path):
    results = tmp_path / "results"
    results.write_text("not a folder")
    out = results / "demo" / "manifest.csv"
    with pytest.raises(OutputWriteError, match=f"cannot write {out}: {results} is a file, not a folder"):
        write_json({}, out)
    (tmp_path / "report.json").mkdir()
    with pytest.raises(OutputWriteError, match="report.json: a folder is in the way"):
        write_json({}, tmp_path / "report.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "results"]


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(KeyError):
        with atomic_output(tmp_path / "x.csv") as tmp:
            tmp.write_text("partial")
            raise KeyError("k")
    with pytest.raises(FileNotFoundError):
        with atomic_output(tmp_path / "y.csv"):
            open(tmp_path / "missing-input.csv")
    assert list(tmp_path.iterdir()) == []


def test_hdf5_write_error_without_errno_is_read_from_its_message(tmp_path):
    e = OSError("Can't write data (file write failed: time = Tue, filename = 'x', errno = 28, error message = 'No space left on device')")
    assert str(rio.write_error(tmp_path / "cache.h5", e)) == f"cannot write {tmp_path / 'cache.h5'}: no space left on device"


def test_error_message_of_a_failed_job():
    assert error_message(OutputWriteError("cannot write a.csv: no space left on device")) == "cannot write a.csv: no space left on device"
    assert error_message(OSError(errno.ENOSPC, "No space left on device", "b.jpg")) == "cannot write b.jpg: no space left on device"
    assert error_message(OSError(errno.ENOENT, "No such file or directory", "in.csv")) == "in.csv: no such file or directory"
    assert error_message(ValueError("bad key")) == "ValueError: bad key"


def _fake_snakemake(log: Path):
    return types.SimpleNamespace(threads=1, log=[str(log)], rule="build_cache", wildcards={})


def test_job_stops_with_one_line_naming_the_path(tmp_path, capsys):
    log = tmp_path / "logs" / "build_cache.log"
    out = tmp_path / "cache.h5"

    def main(smk, logger):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(SystemExit) as excinfo:
        run_script(_fake_snakemake(log), main)
    assert excinfo.value.code == 1
    line = f"cannot write {out}: no space left on device"
    err = capsys.readouterr().err
    assert line in err and "Traceback" not in err
    assert f"ERROR rgbir_reid.build_cache: {line}" in log.read_text()
    assert not out.exists() and not list(tmp_path.glob("cache.tmp-*"))


def test_unwritable_log_folder_stops_the_job_naming_it(tmp_path, capsys):
    (tmp_path / "logs").write_text("a file where the log folder belongs")
    with pytest.raises(SystemExit) as excinfo:
        run_script(_fake_snakemake(tmp_path / "logs" / "build_cache.log"), lambda smk, logger: None)
    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert f"rule build_cache: {tmp_path / 'logs'}" in err and "Traceback" not in err

"""``hwsearch.output``: an output file appears whole, replaces a planted symlink instead of
writing through it, and a file given as the output directory is an error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hwsearch.output import OutputError, check_out_dir, write_atomic


def test_a_planted_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").symlink_to(victim)
    write_atomic(out / "index.html", "<html>")
    assert victim.read_text() == "precious"
    assert not (out / "index.html").is_symlink()
    assert (out / "index.html").read_text() == "<html>"
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # no temporary file left


def test_the_mode_is_a_plain_files(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "page.html", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "\udc80")  # a lone surrogate cannot be written as UTF-8
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_out_dir_checks(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(OutputError, match="is an existing file"):
        check_out_dir(file)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="dangling symlink"):
        check_out_dir(dangling)
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # checking creates nothing

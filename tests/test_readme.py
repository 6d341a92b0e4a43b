"""The README's notebook session runs as written (with a smaller training, so that it takes seconds)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_notebook_session_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python block"
    session = blocks[0]
    quick = 'wtal_kit.Config.from_preset("quick")'
    assert quick in session
    session = session.replace(quick, 'wtal_kit.Config.from_preset("quick", feature_dim=16, iterations=20, eval_every=20)')
    monkeypatch.chdir(tmp_path)
    exec(compile(session, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "0.0 {" in out and "0.7 {" in out  # the two gamma lines
    assert (tmp_path / "runs" / "notebook" / "scores_test.h5").is_file()

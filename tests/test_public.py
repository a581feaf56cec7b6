import subprocess
import sys

import interviewer


def test_public_names_resolve():
    for name in interviewer.__all__:
        assert getattr(interviewer, name) is not None


def test_nothing_heavy_is_imported_for_the_cli_help():
    code = ("import sys, interviewer.cli; "
            "print(','.join(m for m in ('torch', 'sentence_transformers', 'llama_cpp', 'fastapi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

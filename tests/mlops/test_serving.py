"""The exported champion outside winmodel's own environment: a clean virtualenv, and `mlflow models serve`.

The clean virtualenv is built with uv from the model's own ``requirements.txt`` only (PyPI, or uv's
cache on a machine that built one before): winmodel is not installed there, the model brings its
code. The server runs on 127.0.0.1 in winmodel's environment (``--env-manager local``), answers one
scoring request and is stopped; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

VENV_BIN = Path(sys.executable).parent


def _example(model_dir: Path) -> tuple[dict, pd.DataFrame]:
    payload = json.loads((model_dir / "serving_input_example.json").read_text(encoding="utf-8"))
    split = payload["dataframe_split"]
    return payload, pd.DataFrame(split["data"], columns=split["columns"])


def _expected(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    import mlflow.pyfunc

    return np.asarray(mlflow.pyfunc.load_model(str(model_dir)).predict(frame), dtype=float)


def _clean_environment() -> dict[str, str]:
    """Give this environment without this checkout's code or virtualenv (proxies and certificates kept)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not name.startswith("COV_")
    }
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if Path(part) != VENV_BIN
    )
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    return env


@pytest.mark.slow
def test_the_exported_champion_loads_in_a_clean_virtualenv_from_its_own_requirements(
    trained_project, tmp_path
):
    model_dir = trained_project.export_dir.resolve()
    requirements = (model_dir / "requirements.txt").read_text(encoding="utf-8").split()
    assert all("==" in line for line in requirements), requirements  # every requirement pinned
    assert not any(line.startswith("winmodel") for line in requirements)
    uv = shutil.which("uv", path=str(VENV_BIN)) or shutil.which("uv")
    assert uv, "uv is a dev dependency (pyproject.toml)"
    env = _clean_environment()
    venv = tmp_path / "clean"
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        env=env,
        timeout=120,
    )
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", "requirements.txt"],
        cwd=model_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    _, frame = _example(model_dir)
    script = (
        "import json, sys, mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "split = json.load(open(sys.argv[2]))['dataframe_split']\n"
        "frame = pd.DataFrame(split['data'], columns=split['columns'])\n"
        "print(json.dumps([float(p) for p in model.predict(frame)]))\n"
        "import importlib.util\n"
        "print(importlib.util.find_spec('winmodel').origin)\n"
    )
    done = subprocess.run(
        [str(python), "-c", script, str(model_dir), str(model_dir / "serving_input_example.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    probabilities, origin = done.stdout.strip().splitlines()[-2:]
    assert origin.startswith(str(model_dir)), origin  # the model's own copy of winmodel's code
    np.testing.assert_allclose(json.loads(probabilities), _expected(model_dir, frame), atol=1e-9)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_scoring_request(trained_project, tmp_path):
    model_dir = trained_project.export_dir.resolve()
    payload, frame = _example(model_dir)
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers share the group: stopped together below
        # MLflow starts `uvicorn` by name: the virtualenv's bin must be on PATH (make serve does it).
        env={
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        request = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = json.loads(answer.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
    predictions = body["predictions"]
    values = [row["win_probability"] if isinstance(row, dict) else row for row in predictions]
    np.testing.assert_allclose(values, _expected(model_dir, frame), atol=1e-9)
    assert all(0 < value < 1 for value in values)

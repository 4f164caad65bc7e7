"""README's MLflow UI walkthrough against the installed MLflow, in a real (headless) Chromium.

`mlflow ui` serves the trained project's store on 127.0.0.1; Debian's Chromium renders each page the
walkthrough visits (``--dump-dom`` after the page's scripts ran) with a fresh profile and no network
but the local server. Every UI label the walkthrough names (in *italics* or **bold**) must be on one
of those pages, the aliases on the registered model's page, the run's artifacts without the model,
and the logged model's artifacts with it. Chromium comes from Debian (`.ci/run` installs it when
absent); in CI (``CI`` set) a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1400,1000",
    "--virtual-time-budget=20000",  # let the page's scripts fetch from the server and render
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed in CI: .ci/run must install it (Debian: chromium)")
    pytest.skip("no chromium: apt-get install chromium (.ci/run does)")


def _walkthrough() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("**The champion in the MLflow UI.**")
    return readme[start : readme.index("**Notebooks.**", start)]


def _labels(section: str) -> set[str]:
    """Give the UI labels the walkthrough names: *italic* and **bold** words, not its own title."""
    bold = set(re.findall(r"\*\*([^*]+)\*\*", section))
    italic = set(re.findall(r"(?<!\*)\*([^*\s][^*]*)\*(?!\*)", section))
    labels = {" ".join(label.split()) for label in bold | italic}  # a label may wrap in README
    return labels - {"The champion in the MLflow UI.", "not"}


def _text(dom: str) -> str:
    """Give the visible words of a rendered page, and its links as `href -> words`."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    links = " ".join(
        f"[{html.unescape(href)} -> {' '.join(html.unescape(re.sub(r'<[^>]+>', ' ', inner)).split())}]"
        for href, inner in re.findall(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', dom, flags=re.S)
    )
    return f"{words} {links}"


def _render(chromium: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return _text(done.stdout)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_the_readme_walkthrough_matches_the_mlflow_ui(trained_project, tmp_path):
    from mlflow import MlflowClient

    chromium = _chromium()
    client = MlflowClient(trained_project.tracking_uri)
    champion = client.get_model_version_by_alias("winmodel", "champion")
    run = client.get_run(champion.run_id)
    experiment = run.info.experiment_id
    logged_model = champion.source.removeprefix("models:/")  # MLflow 3: models:/m-<id>
    assert logged_model.startswith("m-"), champion.source

    port = _free_port()
    log = (tmp_path / "ui.log").open("w")
    server = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
            "ui",
            "--backend-store-uri",
            trained_project.tracking_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its worker shares the group: stopped together below
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    base = f"http://127.0.0.1:{port}"
    pages = {
        "home": "/#/?workflowType=machine_learning",
        "registry": "/#/models/winmodel",
        "version": f"/#/models/winmodel/versions/{champion.version}",
        "run": f"/#/experiments/{experiment}/runs/{run.info.run_id}/artifacts"
        "?workflowType=machine_learning",
        "model": f"/#/experiments/{experiment}/models/{logged_model}/artifacts",
    }
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "ui.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "ui.log").read_text()
            time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=3) as pool:
            rendered = dict(
                zip(
                    pages,
                    pool.map(
                        lambda item: _render(chromium, base + item[1], tmp_path / item[0]),
                        pages.items(),
                    ),
                    strict=True,
                )
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()

    # 1. The GenAI view is the default; "Model training" turns the sidebar's model registry on.
    assert "[#/models -> Model registry]" in rendered["home"], rendered["home"][:1500]
    # 2. The registered model's page lists its versions with their aliases.
    assert "@ champion" in rendered["registry"] and "@ challenger" in rendered["registry"]
    assert (
        f"[#/models/winmodel/versions/{champion.version} -> Version {champion.version}]"
        in (rendered["registry"])
    )
    # The version's page links its source run and its logged model.
    assert f"runs/{run.info.run_id} ->" in rendered["version"]
    assert f"models/{logged_model} ->" in rendered["version"]
    # 3. The run's artifacts: the model card, plots and tables; no model folder (MLflow 3).
    for name in ("model_card.md", "plots", "tables", "profile.md", "leakage_report.txt"):
        assert name in rendered["run"], name
    assert "MLmodel" not in rendered["run"]
    # The experiment's Models tab (beside Runs) lists the logged models.
    assert (
        f"[#/experiments/{experiment}/models?workflowType=machine_learning -> Models]"
        in (rendered["run"])
    )
    # 4. The logged model's artifacts: the MLflow model itself.
    for name in ("MLmodel", "requirements.txt", "python_env.yaml", "code", "data"):
        assert name in rendered["model"], name
    # Every label README names is on one of these pages.
    everything = " ".join(rendered.values())
    labels = _labels(_walkthrough())
    assert {"Model training", "Model registry", "Source Run", "Source Model", "Artifacts"} <= labels
    missing = sorted(label for label in labels if label not in everything)
    assert not missing, f"README names UI labels the installed MLflow does not show: {missing}"

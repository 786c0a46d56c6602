"""`sevis serve`: replicas behind a real nginx with sticky sessions, driven over Streamlit's own protocol.

The slow test starts `sevis serve --replicas 2` on loopback, picks cookies that nginx routes to each replica,
runs four protocol-level sessions at once (two per replica), each uploading a different Fashion-MNIST image
through the proxy, and checks that each sees its own image's prediction and no other session's file; then it
sends SIGTERM and checks that every process `sevis serve` started is gone.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sevis.cli import serve
from sevis.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 600  # two replicas importing torch on a busy 2-core machine


def test_print_config_has_sticky_sessions_and_websocket_upgrades(capsys):
    assert main(["serve", "--replicas", "2", "--port", "8080", "--backend", "10.0.0.7:8501", "--print-config"]) == 0
    conf = capsys.readouterr().out
    assert "hash $sevis_route consistent;" in conf
    assert "map $cookie_sevis_replica $sevis_route" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert conf.count("server 127.0.0.1:") == 2 and "server 10.0.0.7:8501" in conf
    assert "listen 0.0.0.0:8080;" in conf
    assert "client_max_body_size 51m;" in conf  # the app's maxUploadSize (50 MB) passes the proxy


def test_replicas_without_nginx_say_so_and_start_nothing(monkeypatch, capsys):
    monkeypatch.setattr(serve, "find_nginx", lambda: None)
    started = []
    monkeypatch.setattr(serve.subprocess, "Popen", lambda *a, **k: started.append(a))
    assert main(["serve", "--replicas", "2", "--port", "8080"]) == 2
    err = capsys.readouterr().err
    assert "needs nginx" in err and "apt-get install nginx" in err and "--replicas 1" in err
    assert "Traceback" not in err and started == []


def test_unknown_backend_is_one_clear_message(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--replicas", "0", "--backend", "nohost"])
    assert "is not HOST:PORT" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- for real
def test_each_replica_runs_one_torch_thread_unless_the_operator_says_otherwise(monkeypatch):
    # One small image per interaction: a second intra-op thread mostly spins (the load benchmark measured an
    # upload at 0.44 server CPU-s with 2 threads against 0.20 s with 1), so cores go to replicas instead.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for replicas in (1, 2):
        fleet = serve.Fleet(replicas, port=0, log=lambda *_: None)
        try:
            assert fleet._replica_env()["OMP_NUM_THREADS"] == "1"
        finally:
            shutil.rmtree(fleet.folder, ignore_errors=True)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    fleet = serve.Fleet(1, port=0, log=lambda *_: None)
    try:
        assert fleet._replica_env()["OMP_NUM_THREADS"] == "3"
    finally:
        shutil.rmtree(fleet.folder, ignore_errors=True)


def _get(url: str, cookie: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}


def _cookies_per_replica(base: str, per_replica: int) -> dict[str, list[str]]:
    """Ask the proxy (health checks only: no session) for fresh cookies until each replica has `per_replica`."""
    found: dict[str, list[str]] = {}
    for _ in range(400):
        _, headers = _get(f"{base}/_stcore/health")
        cookie = headers["set-cookie"].split(";")[0].split("=", 1)[1]
        replica = headers["x-sevis-replica"]
        # a cookie keeps its replica: the same request with it lands there again
        assert _get(f"{base}/_stcore/health", f"sevis_replica={cookie}")[1]["x-sevis-replica"] == replica
        found.setdefault(replica, [])
        if len(found[replica]) < per_replica:
            found[replica].append(cookie)
        if len(found) == 2 and all(len(v) == per_replica for v in found.values()):
            return found
    raise AssertionError(f"the proxy did not spread 400 new browsers over 2 replicas: {found}")


@pytest.mark.slow
def test_two_replicas_behind_nginx_keep_each_session_on_its_own_replica():
    from bench.load import process_tree, session_images
    from bench.protocol import StreamlitSession

    if serve.find_nginx() is None:
        pytest.skip("nginx is not installed (setup.sh installs the Debian package nginx)")
    port = serve.free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "sevis.cli.main", "serve", "--replicas", "2", "--port", str(port),
                             "--address", "127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if _get(f"{base}/_stcore/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "sevis serve did not answer"
            time.sleep(1)
        tree = process_tree(proc.pid)
        names = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in tree}
        assert sum("streamlit run" in c for c in names.values()) == 2
        assert any(c.startswith("nginx: master") for c in names.values())

        cookies = _cookies_per_replica(base, 2)
        plan = [(replica, cookie) for replica, values in sorted(cookies.items()) for cookie in values]
        images = session_images(len(plan))
        tokens = [f"student{i}_" for i in range(len(plan))]

        async def student(i: int, cookie: str) -> tuple:
            async with StreamlitSession(base, timeout_s=300, cookies={"sevis_replica": cookie}) as s:
                run = await s.upload(f"{tokens[i]}garment.png", images[i][0])
                return s.replica, run

        async def all_students():
            return await asyncio.gather(*[student(i, c) for i, (_, c) in enumerate(plan)])

        results = asyncio.run(all_students())
        for i, ((replica, _), (seen_replica, run)) in enumerate(zip(plan, results)):
            assert seen_replica == replica  # every request of the session stayed on its replica
            assert run.status == "FINISHED_SUCCESSFULLY" and not run.exceptions and not run.error_alerts
            assert run.mentions(f"{tokens[i]}garment.png")
            assert not any(run.mentions(t) for t in tokens if t != tokens[i])
            label, pct = run.prediction()
            expected = images[i][1]
            if expected is not None:  # the dataset package is installed: the exact prediction of its own image
                assert (label, f"{pct:.1f}%") == expected
        assert len({images[i][1] for i in range(len(plan))}) == len(plan)  # four different predictions

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        time.sleep(0.5)
        left = [pid for pid in tree if Path(f"/proc/{pid}").exists()
                and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        assert left == [], f"still running after SIGTERM: {[names[p] for p in left]}"
        assert "stopping" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""`make run` from a clean clone serves the guide.

The repository's committed state is cloned into a temporary directory (the
prepared third-party trees, build/newlib and build/lwip, are linked in, as
scripts/deps would have made them); `make run` there, with no arguments and
no terminal, builds httpd, renders docs/ with cmark-gfm into a tar disk and
boots it. The test reads the URL it prints, fetches / and a chapter, and
compares them with the Markdown they came from.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

from ringlet import root

TIMEOUT = 600  # the clone builds the kernel and lwIP from scratch


def first_heading(md):
    for line in open(md, encoding="utf-8"):
        if line.startswith("# "):
            return line[2:].strip()
    raise AssertionError("no heading in " + md)


def test_make_run_serves_the_guide(tmp_path):
    repo = root()
    clone = str(tmp_path / "ringlet")
    subprocess.run(["git", "clone", "-q", repo, clone], check=True)
    os.makedirs(os.path.join(clone, "build"))
    for dep in ("newlib", "lwip"):
        # Prepared already (make test built them): shared, not built a second time.
        if os.path.isdir(os.path.join(repo, "build", dep)):
            os.symlink(os.path.join(repo, "build", dep), os.path.join(clone, "build", dep))
    env = dict(os.environ, RINGLET_ACCEL="tcg")
    proc = subprocess.Popen(["make", "-s", "run", "RUNFLAGS=--accel tcg"], cwd=clone, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(l.decode(errors="replace")) for l in proc.stdout],
                     daemon=True).start()
    try:
        url = None
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end and proc.poll() is None:
            text = "".join(lines)
            m = re.search(r"serves the guide at\s+(http://127\.0\.0\.1:\d+/)", text)
            if m and "httpd: serving /www on port 80" in text:
                url = m.group(1)
                break
            time.sleep(0.2)
        assert url, "no URL from make run:\n" + "".join(lines)
        assert "Stop it with" in "".join(lines)

        index = urllib.request.urlopen(url, timeout=60).read().decode()
        assert "<h1>%s</h1>" % first_heading(os.path.join(clone, "docs", "README.md")) in index
        # The index links each chapter as NAME.html; follow the sockets chapter.
        assert 'href="sockets.html"' in index
        chapter = urllib.request.urlopen(url + "sockets.html", timeout=60).read().decode()
        heading = first_heading(os.path.join(clone, "docs", "sockets.md"))
        heading_html = re.sub(r"`([^`]*)`", r"<code>\1</code>", heading)
        assert "<h1>%s</h1>" % heading_html in chapter
        assert '<link rel="stylesheet" href="style.css">' in chapter
        css = urllib.request.urlopen(url + "style.css", timeout=60)
        assert css.headers["Content-Type"].startswith("text/css")
        # The devices make run gives it: the disk, the NIC, virtio-rng, the balloon (no target set).
        st = json.loads(urllib.request.urlopen(url + "ringlet/status?json", timeout=60).read())
        assert st["disks"][0]["read_only"] is True and st["net"][0]["rx_frames"] > 0
        assert st["entropy"]["virtio_rng"] is True
        assert st["balloon"]["target_pages"] == 0 and st["balloon"]["actual_pages"] == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

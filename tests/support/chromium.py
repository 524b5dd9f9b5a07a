"""Headless Chromium for tests (Debian's `chromium` package, scripts/deps.sh test): run it on a
URL, read what a page shows, check a screenshot. Used by tests/integration/test_dashboard.py.

CORRAL_CHROMIUM names another binary (default /usr/bin/chromium). A missing Chromium fails the
caller: it is a test dependency, installed by deps.sh."""

import html.parser
import os
import signal
import struct
import subprocess
import tempfile
import time
import zlib

CHROMIUM = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")


def _complete(out_path: str, screenshot) -> bool:
    """Whether Chromium wrote everything asked for: the whole DOM, and the PNG up to its IEND."""
    with open(out_path, "rb") as f:
        dom = f.read()
    if dom and not dom.rstrip().endswith(b"</html>"):
        return False
    if screenshot is not None:
        try:
            with open(screenshot, "rb") as f:
                return f.read()[-12:][4:8] == b"IEND"
        except FileNotFoundError:
            return False
    return bool(dom)


def chromium(url: str, *extra: str, timeout: float = 60.0) -> str:
    """Runs headless Chromium on url with a fresh profile; returns its stdout (the DOM with
    --dump-dom). Chromium and its helper processes run in a session of their own, killed by its
    group id once the browser is done.

    Chromium dumps and shoots at the page's load event: a page that must run for a while first
    is served with its last bytes held back (test_dashboard.py's Gatekeeper).
    (Not --virtual-time-budget: it skips the 2 s poll timer at once, so rates would be over a
    few milliseconds, and here it now and then never expired: Chromium hung with nothing
    written.) A headless Chromium may also write its output and then not exit (known upstream):
    20 s on, complete outputs (the DOM up to </html>, the PNG up to IEND) are accepted; anything
    less fails, as does no exit by `timeout`."""
    assert os.access(CHROMIUM, os.X_OK), \
        f"{CHROMIUM} not found: install Debian's chromium (bash scripts/deps.sh test)"
    screenshot = next((a.split("=", 1)[1] for a in extra if a.startswith("--screenshot=")), None)
    with tempfile.TemporaryDirectory(prefix="corral-chromium-") as tmp:
        profile = os.path.join(tmp, "profile")
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                *extra, url]
        # Files, not pipes: a helper that outlived the browser would hold a pipe open.
        out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        rc, hung = None, False
        start = time.monotonic()
        grace = start + 20
        try:
            while True:
                try:
                    rc = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    now = time.monotonic()
                    if now > grace and _complete(out_path, screenshot):
                        hung = True
                        break
                    if now - start > timeout:
                        break
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        with open(err_path, "rb") as f:
            err_text = f.read().decode("utf-8", "replace")[-3000:]
        if hung:
            print(f"chromium wrote its output but did not exit; killed: {argv}")
        else:
            assert rc is not None, f"chromium did not finish within {timeout}s: {argv}\n{err_text}"
            assert rc == 0, f"chromium exited {rc}:\n{err_text}"
        with open(out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Numbers(html.parser.HTMLParser):
    """Every element with a data-metric attribute: its data-* attributes and its text."""

    def __init__(self):
        super().__init__()
        self.items = []
        self.ids = {}
        self._open = []  # [(tag, item or None, text parts)]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        item = None
        if "data-metric" in a:
            item = {k[5:]: v for k, v in a.items() if k.startswith("data-")}
            item["class"] = a.get("class", "")
            self.items.append(item)
        if tag in ("meta", "br", "link", "input", "img"):
            return
        self._open.append((tag, item, a.get("id"), []))

    def handle_endtag(self, tag):
        while self._open:
            t, item, ident, parts = self._open.pop()
            text = "".join(parts)
            if item is not None:
                item["text"] = text
            if ident:
                self.ids[ident] = text
            for _, _, _, outer in self._open:
                outer.append(text)
            if t == tag:
                break

    def handle_data(self, data):
        if self._open:
            self._open[-1][3].append(data)


def page_numbers(dom: str) -> Numbers:
    p = Numbers()
    p.feed(dom)
    p.close()
    return p


def png_size_and_pixels(path: str):
    """(width, height, decompressed scanline bytes) of a PNG, checked chunk by chunk."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + chunk) == crc, f"bad CRC in {kind}"
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)

"""Screenshots of notebook 04's attention explorer in JupyterLab, in a headless Chromium at 1366 x 768 (a laptop).

    apt-get install chromium                               # Debian's browser; Playwright drives it
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install playwright
    python bench/explorer_screenshot.py                    # writes figures/explorer_1366x768*.png

It copies the cells notebook 04 needs for its explorer (the imports, the models, the explorer cell and the text
above it) into a scratch notebook, starts JupyterLab on it (no token, a fresh settings folder, this checkout first
on the kernel's path), runs all cells from the Run menu, waits for the widget, scrolls it to the top and takes a
screenshot with the file browser open; closes the file browser (the notebook, and so the explorer's image, gets
wider and taller) and takes a second; then picks "encoder self-attention", moves the step slider, and takes a third.
It prints the explorer's size and where its bottom lands on the 768-pixel screen, each time, and exits with status 1
when it does not fit. JupyterLab and the browser are stopped at the end, also on failure. The fine-tuned model
comes from bertgen_mini.zoo as in the notebook ($BERTGEN_CACHE chooses the cache; a missing model is trained first).
Not a test (it needs a browser and minutes): a tool to check the layout, by its numbers and by eye (the PNGs).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "04_cross_attention.ipynb"
VIEWPORT = {"width": 1366, "height": 768}
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# no news or update toasts over the screenshot: (settings folder, file, values)
QUIET_SETTINGS = ("@jupyterlab/apputils-extension", "notification.jupyterlab-settings",
                  {"fetchNews": "false", "checkForUpdates": False})


def explorer_notebook(folder: Path) -> Path:
    """A copy of notebook 04 with only the cells its explorer needs, written into `folder`."""
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = notebook["cells"]
    code = lambda i: cells[i]["cell_type"] == "code"
    explorer = next(i for i, c in enumerate(cells) if code(i) and "explore_attention(" in "".join(c["source"]))
    setup = [i for i in range(explorer) if code(i) and any(word in "".join(cells[i]["source"])
                                                          for word in ("import ", "finetuned_bert2bert("))]
    keep = setup + [explorer - 1, explorer]  # the explorer cell and the text that introduces it
    notebook["cells"] = [{**cells[i], "outputs": [], "execution_count": None} if code(i) else cells[i] for i in keep]
    notebook["metadata"]["kernelspec"] = KERNEL  # so JupyterLab starts it instead of asking
    path = folder / "04_explorer.ipynb"
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyterlab(folder: Path, port: int) -> subprocess.Popen:
    """JupyterLab serving `folder` with no token, fresh settings and workspaces, this checkout on PYTHONPATH."""
    settings = folder / "settings"
    plugin, file, values = QUIET_SETTINGS
    (settings / plugin).mkdir(parents=True)
    (settings / plugin / file).write_text(json.dumps(values), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
           "BERTGEN_FIGURES": str(folder / "figures")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={folder}"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "lab.log", "w"),
                              start_new_session=True)  # its own process group: stopped with its kernels
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2)
            return server
        except OSError:
            time.sleep(1)
    stop(server)
    raise RuntimeError(f"JupyterLab did not start; see {folder / 'lab.log'}")


def stop(server: subprocess.Popen) -> None:
    """Stop JupyterLab and the kernels it started (one process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def run_all_cells(page, tries: int = 3) -> None:
    """Run > Run All Cells from the menu bar, again until a cell shows it has started (a busy page can drop a
    click)."""
    for _ in range(tries):
        dialog = page.locator(".jp-Dialog")
        if dialog.count():  # e.g. the kernel chooser, when the kernel was slow to start: take its default
            print("accepting a dialog:", " ".join(dialog.first.inner_text().split())[:120])
            dialog.locator(".jp-mod-accept").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_selector(".jp-InputPrompt:has-text('[*]'), .jp-InputPrompt:has-text('[1]')", timeout=30_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    page.screenshot(path="explorer_debug.png")
    raise RuntimeError("Run All Cells did not start the notebook (see explorer_debug.png)")


def screenshot_explorer(url: str, out: Path, chromium: str, timeout_s: int) -> bool:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            run_all_cells(page)
            image = page.locator(".widget-vbox .widget-image").first
            try:
                image.wait_for(timeout=timeout_s * 1000)
            except Exception:
                page.screenshot(path=out / "explorer_debug.png")  # what the page showed instead
                raise
            explorer = page.locator(".widget-vbox").first

            def measure_and_shoot(name: str, what: str) -> bool:
                """Scroll the explorer to the top, print where it lands, save a screenshot; True when it fits."""
                explorer.evaluate("node => node.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(1500)
                box = explorer.bounding_box()
                bottom = box["y"] + box["height"]
                fits = box["x"] + box["width"] <= VIEWPORT["width"] and bottom <= VIEWPORT["height"]
                print(f"{what}: explorer {box['width']:.0f} x {box['height']:.0f} px, top at {box['y']:.0f}, bottom "
                      f"at {bottom:.0f} px of {VIEWPORT['height']}: {'fits' if fits else 'DOES NOT FIT'}")
                page.screenshot(path=out / name)
                return fits

            fits = [measure_and_shoot("explorer_1366x768.png", "file browser open")]
            page.keyboard.press("Escape")              # command mode, so the shortcut reaches JupyterLab
            page.keyboard.press("Control+b")           # View > Show Left Sidebar, off: the widest notebook
            page.wait_for_timeout(1500)
            fits.append(measure_and_shoot("explorer_1366x768_browser_closed.png", "file browser closed"))

            def then_wait_for_the_new_image(action):
                before = image.get_attribute("src")
                action()
                page.wait_for_function("old => document.querySelector('.widget-vbox .widget-image').src !== old",
                                       arg=before, timeout=120_000)

            then_wait_for_the_new_image(page.get_by_role("button", name="encoder self-attention").click)
            step_readout = page.locator(".widget-vbox .widget-hslider").nth(1).locator(".widget-readout")
            step_readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("8")
            then_wait_for_the_new_image(lambda: page.keyboard.press("Enter"))
            page.wait_for_timeout(1000)
            fits.append(measure_and_shoot("explorer_1366x768_encoder_step8.png", "encoder self-attention, step 8"))
            return all(fits)
        finally:
            browser.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "figures"), help="folder for the PNGs")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for the explorer to appear")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="explorer_shot_") as scratch:
        folder = Path(scratch)
        notebook = explorer_notebook(folder)
        port = free_port()
        server = start_jupyterlab(folder, port)
        try:
            fits = screenshot_explorer(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}", Path(args.out),
                                       args.chromium, args.timeout)
        finally:
            stop(server)
    print(f"wrote {args.out}/explorer_1366x768{{,_browser_closed,_encoder_step8}}.png")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())

"""`mcuqual-report`: render the Allure results into the HTML deployment report, and look at it.

Allure 3 (the npm package `allure`, pinned in package.json) renders the report in
Node alone, no Java; its history file (reports/allure-history.jsonl) carries the
trends from run to run. Headless Chromium (Debian's `chromium`) loads the report
from a local HTTP server, the way a reviewer's browser would, to dump its page
and take a screenshot.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from mcuqual.common.errors import McuqualError

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


class RenderError(McuqualError):
    """The report could not be rendered or viewed."""


def render(root: Path, results: Path, output: Path) -> Path:
    """Generate the HTML report from `results` into `output` (history kept beside it)."""
    allure = root / "node_modules" / ".bin" / "allure"
    if not allure.exists():
        raise RenderError(f"{allure} not found: run `npm ci` in {root} (scripts/setup.sh does).")
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise RenderError(f"no Allure results in {results}: run the qualification first.")
    _clear_report_folder(output)                         # no page of an older run survives
    command = [str(allure), "generate", str(results), "--config", str(root / "allurerc.mjs"),
               "--output", str(output)]
    # allurerc.mjs reads the run's categories, tree and verdict line from the results folder
    env = {**os.environ, "MCUQUAL_ALLURE_RESULTS": str(results)}
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    pages = sorted(output.glob("**/index.html"), key=lambda p: len(p.parts))
    if done.returncode != 0 or not pages:
        raise RenderError(f"allure generate failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (output / REPORT_MARKER).write_text("rendered by mcuqual-report; replaced on the next run\n")
    return pages[0]


# Left in every folder render() fills: only such a folder (or an empty or new one) is replaced.
REPORT_MARKER = ".mcuqual-report"


def _clear_report_folder(output: Path) -> None:
    if not output.exists():
        return
    if not output.is_dir():
        raise RenderError(f"--output {output} is a file, not a report folder.")
    if any(output.iterdir()) and not (output / REPORT_MARKER).is_file():
        raise RenderError(f"--output {output} holds files that are not a report mcuqual-report "
                          "rendered; it replaces only its own reports. Name an empty or new "
                          "folder.")
    shutil.rmtree(output)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RenderError("chromium not found: install the Debian package chromium "
                          "(scripts/setup.sh does).")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def view(report_dir: Path, screenshot: Path | None = None, width: int = 1400,
         height: int = 1500, route: str = "", page: str = "index.html") -> str:
    """Serve the report on localhost, load it in headless Chromium; return the rendered DOM.
    `route` opens one of the report's views ("categories", a test result's id)."""
    handler = functools.partial(_QuietHandler, directory=str(report_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}" + (f"#/{route}" if route else "")
    try:
        with tempfile.TemporaryDirectory() as profile:
            base = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--window-size={width},{height}", "--virtual-time-budget=10000"]
            dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                                 timeout=120)
            if screenshot is not None:
                subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True,
                               timeout=120)
    finally:
        server.shutdown()
    if dom.returncode != 0:
        raise RenderError(f"chromium could not load {url}: {dom.stderr[-1000:]}")
    return dom.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcuqual-report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("reports/allure-results"))
    parser.add_argument("--output", type=Path, default=Path("reports/allure-report"))
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="also take a screenshot of the report in headless Chromium")
    parser.add_argument("--summary-screenshot", type=Path, default=None,
                        help="and one of the deployment summary (reports/latest/summary.html: "
                             "the models x boards matrix and 'Which board?')")
    parser.add_argument("--summary", type=Path, default=Path("reports/latest/summary.html"))
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        index = render(root, args.results.resolve(), args.output.resolve())
        print(f"report: {index}")
        if args.screenshot:
            view(index.parent, args.screenshot.resolve())
            print(f"screenshot: {args.screenshot}")
        if args.summary_screenshot:
            if not args.summary.is_file():
                raise RenderError(f"{args.summary} not found: run the qualification first.")
            view(args.summary.resolve().parent, args.summary_screenshot.resolve(),
                 height=1400, page=args.summary.name)
            print(f"summary screenshot: {args.summary_screenshot}")
    except McuqualError as exc:
        print(f"mcuqual-report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

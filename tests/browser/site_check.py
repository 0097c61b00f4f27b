"""Every page of the built course site (build/site) in Chromium: no broken internal links, no missing images.

    python tests/browser/site_check.py [build/site]

Pages are opened from disk (file://) with the network blocked, so only what the site itself ships is checked:
each relative link must name a file of the site (and, with a #fragment, an id on that page), each local image
must load, and no page may show a widget's `interactive(children=...` text instead of its static figure.
External images (the Colab and Kaggle badges) are counted, not loaded. Exit status 1 if anything failed.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
import urllib.parse

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PAGE_FACTS_JS = """() => ({
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  images: [...document.querySelectorAll('img')].map(i => ({src: i.getAttribute('src') || '',
      loaded: i.complete && i.naturalWidth > 0})),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  text: document.body.innerText,
})"""


def check_site(site: pathlib.Path) -> tuple[list[str], int, int]:
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    problems: list[str] = []
    facts: dict[pathlib.Path, dict] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.route("http*://**", lambda route: route.abort())  # offline: only the site's own files
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            facts[path] = page.evaluate(PAGE_FACTS_JS)
        browser.close()
    external_images = 0
    for path, fact in facts.items():
        name = path.relative_to(site)
        for image in fact["images"]:
            if image["src"].startswith(("http://", "https://")):
                external_images += 1
            elif not image["loaded"]:
                problems.append(f"{name}: image {image['src'][:80]!r} does not load")
        for href in fact["links"]:
            parsed = urllib.parse.urlparse(href)
            if parsed.scheme or parsed.netloc or href.startswith("mailto:"):
                continue
            target = (path.parent / urllib.parse.unquote(parsed.path)).resolve() if parsed.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{name}: broken link {href!r}")
            elif parsed.fragment and target.suffix == ".html":
                ids = facts[target]["ids"] if target in facts else None
                if ids is not None and urllib.parse.unquote(parsed.fragment) not in ids:
                    problems.append(f"{name}: link {href!r} names no id on {target.name}")
        if "interactive(children=" in fact["text"]:
            problems.append(f"{name}: a widget shows its text repr instead of its static figure "
                            "(re-execute the notebook with the current widgets.explore)")
    return problems, len(pages), external_images


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    site = pathlib.Path(argv[0]) if argv else ROOT / "build" / "site"
    if not (site / "index.html").is_file():
        print(f"{site}/index.html missing: run `make site` first")
        return 1
    start = time.time()
    problems, n_pages, external = check_site(site.resolve())
    for problem in problems:
        print("FAIL", problem)
    print(f"site check: {n_pages} pages, {len(problems)} problems, {external} external images not loaded "
          f"(badges), {time.time() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

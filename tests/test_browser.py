"""The browser checks' own machinery (`make browser-test` runs them on every notebook and site page)."""

import importlib.util
import pathlib

import psutil

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "browser" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def test_site_check_finds_broken_links_missing_images_and_widget_text(tmp_path):
    site_check = _load("site_check")
    (tmp_path / "img.png").write_bytes(PNG_1X1)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text('<p id="here">ok</p><a href="../index.html#top">up</a>')
    (tmp_path / "index.html").write_text(
        '<h1 id="top">t</h1><img src="img.png"><img src="https://example.org/badge.svg">'
        '<a href="sub/page.html#here">fine</a><a href="https://example.org">external</a>')
    assert site_check.check_site(tmp_path) == ([], 2, 1)

    (tmp_path / "bad.html").write_text(
        '<img src="missing.png"><a href="nope.html">x</a><a href="sub/page.html#gone">y</a>'
        "<pre>interactive(children=(IntSlider(value=3)))</pre>")
    problems, pages, _ = site_check.check_site(tmp_path)
    assert pages == 3 and len(problems) == 4, problems
    assert {p.split(":")[0] for p in problems} == {"bad.html"}


def test_lab_server_and_its_kernels_are_stopped_by_pid(tmp_path):
    lab_check = _load("lab_check")
    (tmp_path / "root").mkdir()
    lab = lab_check.Lab(tmp_path / "root", tmp_path)
    try:
        assert lab.api("status")["started"]
        lab.api("kernels", method="POST")
        lab.remember_kernels()
        pids = {lab.process.pid, *lab.kernel_pids}
        assert len(pids) >= 2, "the server and one kernel"
    finally:
        lab.stop()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

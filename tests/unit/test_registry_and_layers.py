"""The registry finds processors without a central list (Vigie's own modules, entry points, a setting) and
refuses clashes; the layer contract (import-linter) passes on the tree and fails on an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings
from streams import registry
from streams.registry import RegistryError

ENTRY_POINT_PLUGIN = """
from streams.processor import Input, Processor
from schemas.events import VehicleStatusEvent

PROCESSOR = Processor(name="ep_demo", inputs=(Input("ep-demo", VehicleStatusEvent, "id"),), states=(), tables=(),
                      engine=lambda ctx: None)
"""


def test_vigies_own_processors_are_found_in_their_folder() -> None:
    names = [p.name for p in registry.processors(Settings())]
    assert names[:5] == ["alerts", "interventions", "presence", "stations", "stocks"]
    assert registry.logical_topics(Settings(topic_suffix="-x", topic_names={"interventions": "cad.calls"})) == {
        "interventions": "cad.calls-x", "vehicle-status": "vehicle-status-x", "crew-status": "crew-status-x",
        "station-steps": "station-steps-x", "intervention-steps": "intervention-steps-x",
        "alert-actions": "alert-actions-x", "stock-levels": "stock-levels-x",
        "population-presence": "population-presence-x", "presence-steps": "presence-steps-x"}


def test_an_entry_point_registers_a_processor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ep_demo_plugin.py").write_text(ENTRY_POINT_PLUGIN)
    dist = tmp_path / "ep_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[vigie.processors]\nep_demo = ep_demo_plugin:PROCESSOR\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._discover.cache_clear()
    try:
        assert "ep_demo" in {p.name for p in registry.processors(Settings())}
    finally:
        registry._discover.cache_clear()


def test_two_processors_claiming_one_topic_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clash_plugin.py").write_text(ENTRY_POINT_PLUGIN.replace('"ep-demo"', '"vehicle-status"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError, match="topic 'vehicle-status' is claimed by processors"):
        registry.processors(Settings(processor_modules="clash_plugin"))
    with pytest.raises(RegistryError, match="defines no PROCESSOR"):
        registry.processors(Settings(processor_modules="json"))


def test_an_output_needs_one_reader_other_than_its_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "unread_plugin.py").write_text(ENTRY_POINT_PLUGIN.replace("engine=", 'outputs=("nobody",), engine='))
    with pytest.raises(RegistryError, match="publishes to 'nobody', which no processor reads"):
        registry.processors(Settings(processor_modules="unread_plugin"))
    (tmp_path / "loop_plugin.py").write_text(ENTRY_POINT_PLUGIN.replace("engine=", 'outputs=("ep-demo",), engine='))
    with pytest.raises(RegistryError, match="reads its own output 'ep-demo'"):
        registry.processors(Settings(processor_modules="loop_plugin"))
    (tmp_path / "twice_plugin.py").write_text(ENTRY_POINT_PLUGIN.replace("engine=",
                                                                         'outputs=("station-steps",), engine='))
    with pytest.raises(RegistryError, match="output 'station-steps' is claimed by processors 'stations' and "
                                            "'ep_demo'"):
        registry.processors(Settings(processor_modules="twice_plugin"))


def test_a_topic_for_outside_consumers_is_read_by_no_processor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "out_plugin.py").write_text(ENTRY_POINT_PLUGIN.replace("engine=", 'publishes=("alert-actions",), '
                                                                                  'engine='))
    with pytest.raises(RegistryError, match="publishes 'alert-actions' for outside consumers, but processor "
                                            "'alerts' reads it"):
        registry.processors(Settings(processor_modules="out_plugin"))
    (tmp_path / "ok_plugin.py").write_text(ENTRY_POINT_PLUGIN.replace("engine=", 'publishes=("ep-news",), engine='))
    s = Settings(processor_modules="ok_plugin", topic_suffix="-x")
    assert registry.published_topics(s) == {"alerts": "alerts-x", "ep-news": "ep-news-x"}
    from streams.topics import wanted_topics

    assert wanted_topics(s)["ep-news-x"] == wanted_topics(s)["alerts-x"] == 1  # one partition: in order


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--config",
                           str(root / "pyproject.toml")], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_the_layer_contract_passes_on_the_tree_and_fails_on_an_upward_import(tmp_path: Path) -> None:
    packages = ("core", "schemas", "streams", "sinks", "grafana", "devtools", "vigie")
    for name in packages:
        shutil.copytree(PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    ok = _lint(tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "streams" / "upward.py").write_text("from sinks.clickhouse import ClickHouseSink\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0 and "Layers point one way BROKEN" in broken.stdout
    assert "streams.upward -> sinks.clickhouse" in broken.stdout


def test_a_module_dropped_in_streams_processors_is_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams import processors as builtin

    (tmp_path / "folder_demo.py").write_text(ENTRY_POINT_PLUGIN.replace("ep_demo", "folder_demo")
                                             .replace("ep-demo", "folder-demo"))
    monkeypatch.setattr(builtin, "__path__", [*builtin.__path__, str(tmp_path)])
    registry._discover.cache_clear()
    try:
        found = registry.processors(Settings())
        assert "folder_demo" in {p.name for p in found}
        assert "folder-demo" in registry.logical_topics(Settings())
    finally:
        registry._discover.cache_clear()
        sys.modules.pop("streams.processors.folder_demo", None)

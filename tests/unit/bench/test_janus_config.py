"""The Janus config `bench.janus` writes: ICE-lite on one address, API on 127.0.0.1, no extras."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from bench.janus import (
    HTTP_TRANSPORT,
    LOOPBACK_SHIM,
    ROOM_DEFAULTS,
    VIDEOROOM_PLUGIN,
    JanusConfig,
    free_port,
    local_ipv4,
)

Section = dict[str, str]


def parse(text: str) -> dict[str, Section]:
    """The flat ``name: { key = value }`` subset of libconfig the generator writes."""
    sections: dict[str, Section] = {}
    current: Section | None = None
    for line in text.splitlines():
        if match := re.fullmatch(r"(\w[\w-]*): \{", line):
            current = sections.setdefault(match.group(1), {})
        elif line == "}":
            current = None
        elif match := re.fullmatch(r"\t(\w+) = (.+)", line):
            assert current is not None, line
            current[match.group(1)] = match.group(2)
        else:
            pytest.fail(f"unexpected line {line!r}")
    return sections


@pytest.fixture
def config(tmp_path: Path) -> JanusConfig:
    return JanusConfig(base=tmp_path / "cfg", http_port=18088, ice_address="127.0.0.1")


def test_nat_is_ice_lite_half_trickle_on_the_one_address(config: JanusConfig) -> None:
    nat = parse(config.janus_jcfg())["nat"]
    assert nat["ice_lite"] == "true"
    assert nat["full_trickle"] == "false"
    assert nat["ice_tcp"] == "false"
    assert nat["ice_enforce_list"] == '"127.0.0.1"'
    assert not {k for k in nat if k.startswith(("stun", "turn", "nat_1_1"))}


def test_advertised_interface_is_the_ice_address(tmp_path: Path) -> None:
    config = JanusConfig(base=tmp_path, http_port=1, ice_address="192.0.2.7")
    text = parse(config.janus_jcfg())
    assert text["general"]["interface"] == '"192.0.2.7"'
    assert text["nat"]["ice_enforce_list"] == '"192.0.2.7"'


def test_media_keeps_janus_defaults_but_the_no_media_timer(config: JanusConfig) -> None:
    media = parse(config.janus_jcfg())["media"]
    assert media == {"ipv6": "false", "no_media_timer": "3600"}  # no nack/dtls/rtp port changes


def test_only_our_plugin_folders_and_a_log_file(config: JanusConfig) -> None:
    general = parse(config.janus_jcfg())["general"]
    base = str(config.base)
    for key in ("plugins_folder", "transports_folder", "events_folder", "loggers_folder"):
        assert general[key].strip('"').startswith(base + "/")
    assert general["configs_folder"] == f'"{base}"'
    assert general["log_to_stdout"] == "false"
    assert general["log_to_file"] == f'"{config.log_file}"'
    assert general["debug_level"] == "3"
    assert "event_loops" not in general  # Janus's default: a loop per handle
    assert parse(config.janus_jcfg())["events"] == {"broadcast": "false"}


def test_event_loops_only_when_asked(tmp_path: Path) -> None:
    config = JanusConfig(base=tmp_path, http_port=1, ice_address="127.0.0.1", event_loops=4)
    assert parse(config.janus_jcfg())["general"]["event_loops"] == "4"


def test_http_api_on_loopback_and_the_chosen_port_only(config: JanusConfig) -> None:
    http = parse(config.http_jcfg())
    assert http["general"]["port"] == "18088"
    assert http["general"]["ip"] == '"127.0.0.1"'
    assert http["general"]["http"] == "true"
    assert http["general"]["https"] == "false"
    assert http["general"]["base_path"] == '"/janus"'
    assert http["admin"] == {"admin_http": "false", "admin_https": "false"}


def test_videoroom_has_no_static_rooms(config: JanusConfig) -> None:
    assert parse(config.videoroom_jcfg()) == {"general": {}}


def test_strings_are_quoted_and_escaped(tmp_path: Path) -> None:
    config = JanusConfig(base=tmp_path / 'we"ird\\dir', http_port=1, ice_address="127.0.0.1")
    general = parse(config.janus_jcfg())["general"]
    assert general["configs_folder"] == '"' + str(tmp_path) + '/we\\"ird\\\\dir"'


def test_write_links_only_videoroom_and_http(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for folder, name in (("plugins", VIDEOROOM_PLUGIN), ("transports", HTTP_TRANSPORT)):
        (lib / folder).mkdir(parents=True)
        for other in (name, "libjanus_other.so"):
            (lib / folder / other).write_bytes(b"")
    config = JanusConfig(base=tmp_path / "cfg", http_port=1, ice_address="127.0.0.1", lib_dir=lib)
    config.write()
    config.write()  # idempotent
    files = {p.name for p in config.base.iterdir() if p.is_file()}
    assert files == {"janus.jcfg", "janus.transport.http.jcfg", "janus.plugin.videoroom.jcfg"}
    assert [p.name for p in config.plugins_folder.iterdir()] == [VIDEOROOM_PLUGIN]
    assert [p.name for p in config.transports_folder.iterdir()] == [HTTP_TRANSPORT]
    assert (
        config.plugins_folder / VIDEOROOM_PLUGIN
    ).resolve() == lib / "plugins" / VIDEOROOM_PLUGIN
    assert list(config.events_folder.iterdir()) == []
    assert list(config.loggers_folder.iterdir()) == []
    assert (config.base / "janus.jcfg").read_text() == config.janus_jcfg()


def test_room_defaults() -> None:
    assert ROOM_DEFAULTS["publishers"] >= 100
    assert ROOM_DEFAULTS["bitrate"] == 0
    assert (ROOM_DEFAULTS["audiocodec"], ROOM_DEFAULTS["videocodec"]) == ("opus", "vp8")
    assert ROOM_DEFAULTS["notify_joining"] is False


def test_loopback_shim_clears_only_the_loopback_flag() -> None:
    assert "int getifaddrs(struct ifaddrs **ifap)" in LOOPBACK_SHIM
    assert "RTLD_NEXT" in LOOPBACK_SHIM
    assert "ifa_flags &= ~IFF_LOOPBACK" in LOOPBACK_SHIM


def test_free_port_and_local_address() -> None:
    assert 1024 <= free_port() < 65536
    assert ipaddress.ip_address(local_ipv4()).version == 4

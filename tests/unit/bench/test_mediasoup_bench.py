"""bench.mediasoup's ORTC ↔ SDP mapping: the load generator's SDP becomes mediasoup producer
parameters, and mediasoup's transport and consumer parameters become SDP the lean endpoint
accepts (it is the DTLS client, mediasoup ICE-lite on 127.0.0.1); and what the benchmark says
when mediasoup cannot run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import mediasoup
from bench.lean import LeanEndpoint
from bench.mediasoup import (
    ConsumerInfo,
    TransportInfo,
    client_dtls_parameters,
    producer_parameters,
    publish_answer,
    subscribe_offer,
)
from parlour.media import sdp as sdplib
from parlour.media.dtls import Certificate

# The shape of mediasoup 3.27's createWebRtcTransport reply (values shortened).
TRANSPORT: dict[str, Any] = {
    "id": "t1",
    "iceParameters": {"usernameFragment": "msufrag", "password": "mspassword", "iceLite": True},
    "iceCandidates": [
        {
            "foundation": "udpcandidate",
            "priority": 1076302079,
            "address": "127.0.0.1",
            "protocol": "udp",
            "port": 41234,
            "type": "host",
        },
        {
            "foundation": "tcpcandidate",
            "priority": 1076276479,
            "address": "127.0.0.1",
            "protocol": "tcp",
            "port": 41235,
            "type": "host",
            "tcpType": "passive",
        },
    ],
    "dtlsParameters": {
        "role": "auto",
        "fingerprints": [
            {"algorithm": "sha-1", "value": "AA:BB"},
            {"algorithm": "sha-256", "value": "12:34:56"},
        ],
    },
}


def test_transport_info_keeps_udp_candidates_and_the_credentials() -> None:
    info = TransportInfo.parse(TRANSPORT)
    assert info.id == "t1" and (info.ufrag, info.pwd) == ("msufrag", "mspassword")
    assert info.candidates == (("127.0.0.1", 41234, 1076302079, "udpcandidate"),)
    lines = info.lines("passive")
    assert "a=fingerprint:sha-256 12:34:56" in lines and "a=setup:passive" in lines
    assert not any("sha-1" in line for line in lines)


def test_client_dtls_parameters_from_a_certificate_fingerprint() -> None:
    fingerprint = Certificate.generate().fingerprint("sha-256")
    params = client_dtls_parameters(fingerprint)
    assert params["role"] == "client"
    assert params["fingerprints"] == [{"algorithm": "sha-256", "value": fingerprint.split()[1]}]


async def test_publishing_offer_becomes_producers_and_the_answer_points_at_mediasoup() -> None:
    endpoint = LeanEndpoint(None, Certificate.generate(), send_audio=True, send_video=True)
    offer = sdplib.parse(endpoint.offer(direction="sendonly"))
    produced = {m.mid or "": producer_parameters(m) for m in offer.media}
    audio, video = (produced[t.mid or ""] for t in endpoint.tracks)
    assert audio["codecs"] == [
        {
            "mimeType": "audio/opus",
            "payloadType": 111,
            "clockRate": 48000,
            "channels": 2,
            "parameters": {"minptime": 10, "useinbandfec": 1},
            "rtcpFeedback": [],
        }
    ]
    assert video["codecs"][0]["mimeType"] == "video/VP8"
    assert {"type": "nack", "parameter": "pli"} in video["codecs"][0]["rtcpFeedback"]
    assert {"type": "ccm", "parameter": "fir"} in video["codecs"][0]["rtcpFeedback"]
    assert [audio["encodings"], video["encodings"]] == [[{"ssrc": t.ssrc}] for t in endpoint.tracks]
    assert audio["mid"] == endpoint.tracks[0].mid and audio["rtcp"]["cname"]
    assert audio["headerExtensions"] == []  # mediasoup routes by SSRC

    answer = publish_answer(offer, TransportInfo.parse(TRANSPORT), produced)
    parsed = sdplib.parse(answer)
    assert [m.effective_direction for m in parsed.media] == ["recvonly", "recvonly"]
    endpoint.apply_answer(answer)  # what the load generator does; it starts ICE
    assert endpoint.remote is not None
    assert endpoint.remote.addr == ("127.0.0.1", 41234)
    assert endpoint.remote.setup == "passive"  # so the endpoint is the DTLS client
    assert endpoint.remote.fingerprints == [("sha-256", "12:34:56")]
    endpoint.close()


def test_a_section_with_no_ssrc_cannot_be_produced() -> None:
    endpoint = LeanEndpoint(None, Certificate.generate())
    offer = sdplib.parse(endpoint.offer(recv_kinds=("audio",)))
    with pytest.raises(ValueError, match="a=ssrc"):
        producer_parameters(offer.media[0])


def _consumer(mid: str, kind: str, ssrc: int, pt: int) -> ConsumerInfo:
    name = "opus" if kind == "audio" else "VP8"
    codec: dict[str, Any] = {
        "mimeType": f"{kind}/{name}",
        "payloadType": pt,
        "clockRate": 48000 if kind == "audio" else 90000,
        "parameters": {},
        "rtcpFeedback": [{"type": "nack", "parameter": "pli"}] if kind == "video" else [],
    }
    if kind == "audio":
        codec["channels"] = 2
    params = {
        "mid": mid,
        "codecs": [codec],
        "headerExtensions": [],
        "encodings": [{"ssrc": ssrc}],
        "rtcp": {"cname": "alice-cname", "reducedSize": True},
    }
    return ConsumerInfo(f"c{mid}", kind, "alice", params)


async def test_consumers_offer_is_answered_receiving_each_ssrc() -> None:
    endpoint = LeanEndpoint(None, Certificate.generate(), label="sub")
    transport = TransportInfo.parse(TRANSPORT)
    consumers = [_consumer("0", "audio", 1111, 111), _consumer("1", "video", 2222, 96)]
    answer = sdplib.parse(endpoint.answer(subscribe_offer(transport, consumers[:1])))
    assert [m.mid for m in answer.media] == ["0"]
    # A renegotiation repeats the earlier sections and adds the new ones.
    offer = subscribe_offer(transport, consumers)
    assert offer.count("a=ice-lite") == 1 and "a=group:BUNDLE 0 1" in offer
    answer = sdplib.parse(endpoint.answer(offer))
    assert [(m.mid, m.effective_direction) for m in answer.media] == [
        ("0", "recvonly"),
        ("1", "recvonly"),
    ]
    assert answer.media[0].setup == "active"  # the endpoint is the DTLS client
    assert endpoint.stats.kinds == {1111: "audio", 2222: "video"}
    assert endpoint.remote is not None and endpoint.remote.setup == "actpass"
    endpoint.close()


# -- when mediasoup cannot run ------------------------------------------------------------------


def test_unavailable_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = tmp_path / "mediasoup-worker"
    monkeypatch.setenv("MEDIASOUP_WORKER_BIN", str(worker))
    monkeypatch.setenv("MEDIASOUP_NODE_MODULES", str(tmp_path / "node_modules"))
    monkeypatch.setattr(mediasoup.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert f"no mediasoup worker build at {worker}" in str(mediasoup.unavailable())
    worker.write_text("#!/bin/sh\n")
    worker.chmod(0o755)
    assert "npm ci --ignore-scripts" in str(mediasoup.unavailable())
    package = tmp_path / "node_modules" / "mediasoup"
    package.mkdir(parents=True)
    (package / "package.json").write_text("{}")
    assert mediasoup.unavailable() is None
    monkeypatch.setattr(mediasoup.shutil, "which", lambda name: None)
    assert "no `node`" in str(mediasoup.unavailable())


def test_bench_run_rejects_unknown_servers(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import run

    with pytest.raises(SystemExit) as exc:
        run.main(["--servers", "parlour,mediasop"])
    assert exc.value.code == 2
    assert "unknown servers mediasop" in capsys.readouterr().err

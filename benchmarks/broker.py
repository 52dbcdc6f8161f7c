"""`broker`: pub/sub throughput through the real broker process, next to direct PUB → SUB.

Both paths are measured in the same run, interleaved, with the same frames: real wire envelopes
(a `Quote` each, one frame), encoded before the clock starts, so that what is measured is the
transport and not the codec (`codec` measures that). The subscriber only receives frames
(`copy=False`) and counts them; it does not decode.

Each path runs in two fresh processes, publisher and subscriber. The broker is a real separate
process, started as its pod starts it (`python -m components component broker --config FILE`), on
free ports of 127.0.0.1, and measured once its `/ready` answers 200.

PUB/SUB joins late: a subscription takes a moment to reach the publisher, and what is published
before that is silently lost. So the publisher first sends warm-up frames until the subscriber has
received one (which proves the whole path, broker included), and only then sends the measured
messages and an end marker. High-water marks are raised above the message count so that nothing
should drop; the subscriber still counts what it receives, and the loss, if any, is reported.

Each process's CPU time per message is reported too (publisher and subscriber from `getrusage`,
the broker from `/proc`): where publisher, subscriber and broker share fewer cores than they have
busy threads, the brokered rate is bounded by CPU, not by the transport, and this shows it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import zmq

from benchmarks import codec
from benchmarks.results import Result
from components.core import wire
from components.local import free_ports

MESSAGES = 200_000  # per round
ROUNDS = 7  # per path, interleaved direct / broker
SAMPLE_FRAMES = 4096  # distinct pre-encoded envelopes the publisher cycles through
TARGET_RATIO = 0.80
TARGET_RATE = 50_000  # msgs/s through the broker
HWM = 1_000_000  # above MESSAGES + warm-up, on every socket, broker included

WARMUP = b"bench.warmup"
END = b"bench.end"
MARKER_MAX = max(len(WARMUP), len(END))  # data frames are much longer than markers
DATA_PREFIX = b"md.quote."

READY_TIMEOUT_S = 20.0
ROUND_TIMEOUT_S = 30.0
LINGER_MS = 5000


@dataclasses.dataclass(frozen=True)
class RoundResult:
    path: str  # "direct" or "broker"
    sent: int
    received: int
    rate: float  # msgs/s at the subscriber, first to last message
    send_rate: float  # msgs/s at the publisher, for diagnosis (is the publisher the bottleneck?)
    timed_out: bool
    publisher_cpu_s: float  # CPU time of the whole process (I/O thread included) while measured
    subscriber_cpu_s: float
    broker_cpu_s: float | None = None


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


# --- the two processes ------------------------------------------------------------------------


def _publish(url: str, bind: bool, frames: list[bytes], count: int, ready: Event, out: Any) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    if bind:
        sock.bind(url)
    else:
        sock.connect(url)
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while not ready.is_set():  # until the subscriber has heard a warm-up frame
        if time.monotonic() > deadline:
            sock.close(linger=0)
            context.term()
            out.put(("publisher", "the subscriber never received a warm-up frame"))
            return
        sock.send(WARMUP)
        ready.wait(0.001)
    send = sock.send
    sample = len(frames)
    cpu_s = _cpu_s()
    started = time.perf_counter_ns()
    for i in range(count):
        send(frames[i % sample])
    elapsed_ns = time.perf_counter_ns() - started
    send(END)
    sock.close()  # lingers until queued frames have left (or LINGER_MS)
    context.term()
    out.put(("publisher", count, elapsed_ns, _cpu_s() - cpu_s))


def _subscribe(url: str, ready: Event, out: Any) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.LINGER, 0)
    for prefix in (DATA_PREFIX, WARMUP, END):
        sock.setsockopt(zmq.SUBSCRIBE, prefix)
    sock.setsockopt(zmq.RCVTIMEO, int(ROUND_TIMEOUT_S * 1000))
    sock.connect(url)
    received = first_ns = last_ns = 0
    timed_out = False
    cpu_s = _cpu_s()
    try:
        while sock.recv(copy=False).bytes != WARMUP:
            pass
        ready.set()
        cpu_s = _cpu_s()
        recv = sock.recv
        clock = time.perf_counter_ns
        while True:
            frame = recv(copy=False)
            if len(frame) > MARKER_MAX:
                last_ns = clock()
                if not received:
                    first_ns = last_ns
                received += 1
            elif frame.bytes == END:
                break
    except zmq.Again:
        timed_out = True
    cpu_s = _cpu_s() - cpu_s
    sock.close()
    context.term()
    out.put(("subscriber", received, last_ns - first_ns, timed_out, cpu_s))


def _run_round(
    path: str, pub_url: str, sub_url: str, bind: bool, frames: list[bytes]
) -> RoundResult:
    """One measured round in two fresh processes; with `bind`, the publisher binds (direct)."""
    mp = multiprocessing.get_context("spawn")
    ready = mp.Event()
    out = mp.Queue()
    subscriber = mp.Process(
        target=_subscribe, args=(sub_url, ready, out), name="subscriber", daemon=True
    )
    publisher = mp.Process(
        target=_publish,
        args=(pub_url, bind, frames, MESSAGES, ready, out),
        name="publisher",
        daemon=True,
    )
    reports: dict[str, tuple[Any, ...]] = {}
    waiting = {"publisher", "subscriber"}
    try:
        subscriber.start()
        publisher.start()
        deadline = time.monotonic() + 2 * ROUND_TIMEOUT_S
        while len(reports) < 2:
            try:
                report = out.get(timeout=0.2)
            except queue.Empty:
                dead = [p.name for p in (publisher, subscriber) if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{path} round: no report from the {' and '.join(sorted(waiting))}"
                        + (f" ({', '.join(dead)} failed)" if dead else "")
                    ) from None
                continue
            if isinstance(report[1], str):
                raise RuntimeError(f"{path} round: {report[0]}: {report[1]}")
            reports[report[0]] = report[1:]
            waiting.discard(report[0])
        for process in (publisher, subscriber):
            process.join(timeout=LINGER_MS / 1000 + 5)
    finally:
        for process in (publisher, subscriber):
            if process.is_alive():
                process.kill()
                process.join()
    sent, send_ns, publisher_cpu_s = reports["publisher"]
    received, span_ns, timed_out, subscriber_cpu_s = reports["subscriber"]
    rate = (received - 1) / (span_ns / 1e9) if received > 1 and span_ns > 0 else 0.0
    return RoundResult(
        path,
        sent,
        received,
        rate,
        sent / (send_ns / 1e9),
        timed_out,
        publisher_cpu_s,
        subscriber_cpu_s,
    )


# --- the broker process -----------------------------------------------------------------------


def _http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class BrokerProcess:
    """`python -m components component broker` on free ports of 127.0.0.1; a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.http, self.publish, self.subscribe, request, reply = free_ports(5)
        self.log_path = workdir / "broker.log"
        config = workdir / "broker.yaml"
        config.write_text(f"symbols: [AAPL]\nbroker:\n  high_water_mark: {HWM}\n")
        env = {
            **os.environ,
            "TS_LISTEN_HOST": "127.0.0.1",
            "TS_HTTP_PORT": str(self.http),
            "TS_BROKER_PUBLISH_PORT": str(self.publish),
            "TS_BROKER_SUBSCRIBE_PORT": str(self.subscribe),
            "TS_BROKER_REQUEST_PORT": str(request),
            "TS_BROKER_REPLY_PORT": str(reply),
            "TS_DATA_DIR": str(workdir / "var"),
            "TS_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "components", "component", "broker", "--config"]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, str(config)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the broker exited with code {self.process.returncode} before it was "
                    f"ready: {self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if _http_get(f"http://127.0.0.1:{self.http}/ready")[0] == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the broker was not ready within {READY_TIMEOUT_S:g} s")

    def forwarded(self) -> int:
        """`broker_messages_forwarded_total{lane="pubsub",direction="forward"}` from /metrics."""
        status, body = _http_get(f"http://127.0.0.1:{self.http}/metrics")
        pattern = (
            r'^broker_messages_forwarded_total\{(?=[^}]*lane="pubsub")'
            r'(?=[^}]*direction="forward")[^}]*\} (\S+)$'
        )
        match = re.search(pattern, body, re.MULTILINE)
        if status != 200 or match is None:
            raise RuntimeError(f"/metrics answered {status} without the pubsub forward counter")
        return int(float(match.group(1)))

    def cpu_s(self) -> float | None:
        """CPU time the broker process has used so far (every thread), or None without /proc."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 5) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"


# --- the benchmark ----------------------------------------------------------------------------


def _frames() -> list[bytes]:
    return [wire.encode(envelope) for envelope in codec.sample_envelopes(SAMPLE_FRAMES)]


def run() -> list[Result]:
    frames = _frames()
    frame_bytes = round(statistics.mean(len(frame) for frame in frames))
    rounds: list[RoundResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-broker-") as workdir,
        BrokerProcess(Path(workdir)) as broker,
    ):
        broker.wait_ready()
        (direct_port,) = free_ports(1)
        direct_url = f"tcp://127.0.0.1:{direct_port}"
        broker_urls = (f"tcp://127.0.0.1:{broker.publish}", f"tcp://127.0.0.1:{broker.subscribe}")
        forwarded_before = broker.forwarded()
        for _ in range(ROUNDS):  # interleaved, so that both paths see the same machine
            rounds.append(_run_round("direct", direct_url, direct_url, True, frames))
            cpu_before = broker.cpu_s()
            brokered = _run_round("broker", *broker_urls, False, frames)
            cpu_after = broker.cpu_s()
            if cpu_before is not None and cpu_after is not None:
                brokered = dataclasses.replace(brokered, broker_cpu_s=cpu_after - cpu_before)
            rounds.append(brokered)
        forwarded = broker.forwarded() - forwarded_before
        exit_code = broker.stop()
    return _report(rounds, forwarded, exit_code, frame_bytes)


def _report(
    rounds: list[RoundResult], forwarded: int, exit_code: int, frame_bytes: int
) -> list[Result]:
    def of(path: str) -> list[RoundResult]:
        return [r for r in rounds if r.path == path]

    direct, brokered = of("direct"), of("broker")
    direct_rate = statistics.median(r.rate for r in direct)
    broker_rate = statistics.median(r.rate for r in brokered)
    ratio = broker_rate / direct_rate if direct_rate else 0.0
    pairs = [b.rate / d.rate if d.rate else 0.0 for d, b in zip(direct, brokered, strict=True)]

    def loss(path_rounds: list[RoundResult]) -> str:
        sent = sum(r.sent for r in path_rounds)
        received = sum(r.received for r in path_rounds)
        timeouts = sum(r.timed_out for r in path_rounds)
        text = f"received {received:,}/{sent:,}"
        return text + (f", {timeouts} round(s) timed out" if timeouts else "")

    def cpu_us(path_rounds: list[RoundResult]) -> dict[str, float]:
        """CPU time per message of each process, I/O threads included."""
        sent = sum(r.sent for r in path_rounds)
        per_message = {
            "publisher": sum(r.publisher_cpu_s for r in path_rounds) / sent * 1e6,
            "subscriber": sum(r.subscriber_cpu_s for r in path_rounds) / sent * 1e6,
        }
        broker_cpu = [r.broker_cpu_s for r in path_rounds]
        if broker_cpu and all(cpu is not None for cpu in broker_cpu):
            per_message["broker"] = sum(cpu for cpu in broker_cpu if cpu is not None) / sent * 1e6
        return per_message

    def cpu(path_rounds: list[RoundResult]) -> str:
        spent = ", ".join(f"{name} {us:.2f}" for name, us in cpu_us(path_rounds).items())
        return f"CPU µs/msg: {spent}"

    def rates(path_rounds: list[RoundResult]) -> str:
        received = " / ".join(f"{r.rate / 1000:,.0f}k" for r in path_rounds)
        sending = statistics.median(r.send_rate for r in path_rounds)
        return f"rounds {received}; publisher sent at {sending / 1000:,.0f}k/s"

    how = (
        f"median of {ROUNDS} x {MESSAGES:,} msgs of {frame_bytes} B, tcp 127.0.0.1; "
        "subscriber counts frames (recv copy=False), no decode"
    )
    sent_via_broker = sum(r.sent for r in brokered)
    return [
        Result(
            name="broker.direct",
            target="(reference)",
            measured=f"{direct_rate:,.0f} msgs/s",
            meets=None,
            note=f"PUB → SUB, no broker; {rates(direct)}; {loss(direct)}; {cpu(direct)}; {how}",
            values={
                "rate": direct_rate,
                "sent": sum(r.sent for r in direct),
                "received": sum(r.received for r in direct),
                "publisher_rate": statistics.median(r.send_rate for r in direct),
                **{f"{name}_cpu_us": us for name, us in cpu_us(direct).items()},
            },
        ),
        Result(
            name="broker",
            target=f"≥ {TARGET_RATE:,} msgs/s",
            measured=f"{broker_rate:,.0f} msgs/s",
            meets=broker_rate >= TARGET_RATE,
            note=f"PUB → broker → SUB; {rates(brokered)}; {loss(brokered)}; {cpu(brokered)}",
            values={
                "rate": broker_rate,
                "sent": sent_via_broker,
                "received": sum(r.received for r in brokered),
                "publisher_rate": statistics.median(r.send_rate for r in brokered),
                **{f"{name}_cpu_us": us for name, us in cpu_us(brokered).items()},
            },
        ),
        Result(
            name="broker.ratio",
            target=f"≥ {TARGET_RATIO:.0%} of direct",
            measured=f"{ratio:.0%}",
            meets=ratio >= TARGET_RATIO,
            note=(
                f"median brokered / median direct, same run, same frames; round by round "
                f"{min(pairs):.0%}..{max(pairs):.0%}; {os.cpu_count()} CPU(s) shared by "
                "publisher, subscriber and broker"
            ),
            values={"ratio": ratio, "round_ratio_min": min(pairs), "round_ratio_max": max(pairs)},
        ),
        Result(
            name="broker.forwarded",
            target=f"≥ {sent_via_broker:,} (sent)",
            measured=f"{forwarded:,}",
            meets=forwarded >= sent_via_broker,
            note=(
                'sanity: broker_messages_forwarded_total{lane="pubsub",direction="forward"} '
                "over the brokered rounds (includes warm-up frames and end markers); "
                f"broker exit code {exit_code} after SIGTERM"
            ),
            values={"forwarded": forwarded, "sent": sent_via_broker, "exit_code": exit_code},
        ),
    ]

"""`kubectl trading` (the `kubectl-trading` console script): TradingSystems at a glance.

    kubectl trading status [-n NS | -A]     phase, breaker, halt, readiness, positions of each
    kubectl trading halt NAME [-n NS]       set spec.halted: the operator scales execution to 0
    kubectl trading resume NAME [-n NS]     clear spec.halted (refused while the breaker is open)
    kubectl trading breaker NAME [-n NS]    the breaker: state, trigger, reason, history
    kubectl trading uninstall NAME [-n NS] [--timeout S]
                                            delete a system when no operator will: halt it,
                                            wait for its execution pods to stop, then remove
                                            the operator's finalizer

`uninstall` is the way out when the operator is gone for good (uninstalled before its systems):
the operator keeps its finalizer on every TradingSystem across its own restarts and upgrades, so
that deletion is always halt-first; without an operator a deleted system stays Terminating.
It does what the operator's teardown does first (spec.halted, execution scaled to zero, the
execution pods given time to cancel their orders) and then lets the garbage collector remove the
children the system owns; the state volumes are kept unless the spec said otherwise.

It reads the cluster as kubectl does (`$KUBECONFIG`, its current context and namespace).
Exit codes: 0 done, 1 the API refused or the system does not exist, 2 invalid usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from collections.abc import Sequence
from typing import Any

from components.core.config import API_VERSION
from components.core.errors import KubeApiError, TradingSystemError
from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi, KubeConfig

PLURAL = "tradingsystems"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
GROUP = API_VERSION.partition("/")[0]
FINALIZER = f"{GROUP}/finalizer"  # the operator's (trading_operator.names.FINALIZER)
POLL_S = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl trading", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="every TradingSystem: phase, breaker, positions")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    for name, text in (
        ("halt", "halt a system: its execution engine is scaled to zero"),
        ("resume", "resume a halted system (not while its breaker is open)"),
        ("breaker", "the breaker of a system: state, reason and history"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("name")
    uninstall = commands.add_parser(
        "uninstall", help="delete a system without its operator: halt first, then the finalizer"
    )
    uninstall.add_argument("name")
    uninstall.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the execution pods to stop (default 120)",
    )
    for command in commands.choices.values():
        command.add_argument("-n", "--namespace", help="default: the kubeconfig's namespace")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = KubeConfig.from_environment()
        return asyncio.run(_run(args, config))
    except KubeApiError as exc:
        if exc.status == 404:
            print(f"error: no TradingSystem {getattr(args, 'name', '')!r} there", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TradingSystemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _run(args: argparse.Namespace, config: KubeConfig) -> int:
    namespace = args.namespace or config.namespace
    async with KubeApi(config) as api:
        if args.command == "status":
            scope = None if args.all_namespaces else namespace
            systems = await api.list(kubeapi.path(API_VERSION, PLURAL, scope))
            print(status_table(systems))
            return EXIT_OK
        url = kubeapi.path(API_VERSION, PLURAL, namespace, args.name)
        if args.command == "breaker":
            print(breaker_report(await api.get(url)))
            return EXIT_OK
        if args.command == "uninstall":
            return await uninstall(api, namespace, args.name, args.timeout)
        if args.command == "halt":
            await api.patch(url, {"spec": {"halted": True}})
            print(f"{namespace}/{args.name}: halted (spec.halted set); execution scales to zero.")
            return EXIT_OK
        body = await api.get(url)
        breaker = (body.get("status") or {}).get("breaker") or {}
        if breaker.get("state") == "open":
            print(
                f"error: {namespace}/{args.name}: the breaker is open "
                f"({breaker.get('reason') or 'no reason given'}); resume once it is not.",
                file=sys.stderr,
            )
            return EXIT_FAILED
        await api.patch(url, {"spec": {"halted": False}})
        print(f"{namespace}/{args.name}: resumed (spec.halted cleared).")
        return EXIT_OK


def status_table(systems: list[dict[str, Any]]) -> str:
    header = ("NAMESPACE", "NAME", "PHASE", "BREAKER", "HALTED", "READY", "POSITIONS", "EQUITY")
    rows = [header]
    for body in systems:
        status = body.get("status") or {}
        positions = status.get("positions") or {}
        rows.append(
            (
                body["metadata"].get("namespace", ""),
                body["metadata"]["name"],
                status.get("phase") or "-",
                (status.get("breaker") or {}).get("state") or "-",
                "yes" if status.get("halted") else "no",
                status.get("ready") or "-",
                str(positions.get("open", "-")),
                positions.get("equity") or "-",
            )
        )
    if len(rows) == 1:
        return "No TradingSystem found."
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def breaker_report(body: dict[str, Any]) -> str:
    meta = body["metadata"]
    breaker = (body.get("status") or {}).get("breaker")
    name = f"{meta.get('namespace')}/{meta['name']}"
    if not breaker:
        return f"{name}: no breaker reported yet."
    lines = [
        f"{name}: breaker {breaker['state']} since {_time(breaker.get('since_ns'))}"
        f" (reported by {breaker.get('reported_by', 'risk')})",
        f"  trigger: {breaker.get('trigger') or '-'}",
        f"  reason:  {breaker.get('reason') or '-'}",
    ]
    history = breaker.get("history") or []
    if history:
        lines.append("  history:")
        lines += [
            f"    {_time(h.get('ts_ns'))}  {h['state']:<9}  {h.get('trigger') or '-':<12}"
            f"  {h.get('reason') or ''}".rstrip()
            for h in history
        ]
    return "\n".join(lines)


def _time(ts_ns: int | None) -> str:
    if not ts_ns:
        return "-"
    moment = datetime.datetime.fromtimestamp(ts_ns / 1e9, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def uninstall(api: KubeApi, namespace: str, name: str, timeout_s: float) -> int:
    """Halt, delete, wait for the execution pods, remove the finalizer (see the module's doc)."""
    url = kubeapi.path(API_VERSION, PLURAL, namespace, name)
    where = f"{namespace}/{name}"
    await api.get(url)  # 404: no such system
    await api.patch(url, {"spec": {"halted": True}})
    execution = kubeapi.path("apps/v1", "deployments", namespace, f"{name}-execution")
    if await api.find(execution) is not None:
        await api.patch(execution, {"spec": {"replicas": 0}})
    print(f"{where}: halted; execution scaled to zero.")
    await api.delete(url)
    selector = (
        f"app.kubernetes.io/component=execution,app.kubernetes.io/instance={name},"
        "app.kubernetes.io/name=tradingsystem"
    )
    pods_url = kubeapi.path("v1", "pods", namespace)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while pods := await api.list(pods_url, selector):
        if asyncio.get_running_loop().time() >= deadline:
            running = ", ".join(p["metadata"]["name"] for p in pods)
            print(
                f"error: {where}: execution pod(s) {running} still running after {timeout_s:g} s;"
                " the finalizer stays (run again once they are gone).",
                file=sys.stderr,
            )
            return EXIT_FAILED
        await asyncio.sleep(POLL_S)
    body = await api.find(url)
    finalizers = ((body or {}).get("metadata") or {}).get("finalizers") or []
    if FINALIZER in finalizers:
        index = finalizers.index(FINALIZER)
        await api.patch(
            url,
            [
                {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
                {"op": "remove", "path": f"/metadata/finalizers/{index}"},
            ],
            patch="json",
        )
    print(f"{where}: execution stopped; finalizer removed, the system and its children go.")
    return EXIT_OK

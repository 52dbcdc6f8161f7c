"""What a real API server's watch cache does that kmock does not: it keeps a bounded window of
each resource's recent events, so that a watch from a `resourceVersion` older than the window
gets, with HTTP 200, one `ERROR` event carrying a 410 Expired Status and the stream ends (the
client must list again); and with `allowWatchBookmarks=true` it sends `BOOKMARK` events that
carry only the current `resourceVersion`, periodically and just before a `timeoutSeconds`
closes the stream, so that a quiet client resumes from a recent version.

`compact()` drops every event so far, as etcd's compaction does, for a test to force a 410.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

WINDOW = 1000  # events kept per resource (a real cache sizes itself; 100 to 100 000)
BOOKMARK_INTERVAL_S = 60.0  # as a real server (about a minute)
BOOKMARK_BEFORE_TIMEOUT_S = 1.0  # a last bookmark this long before timeoutSeconds ends a watch


@dataclass
class WatchWindow:
    size: int = WINDOW
    bookmark_interval_s: float = BOOKMARK_INTERVAL_S
    _kept: dict[Any, collections.deque[int]] = field(default_factory=dict)
    _expired: dict[Any, int] = field(default_factory=dict)  # newest version dropped
    _latest: int = 0
    _compacted: int = 0
    gone_sent: int = 0  # 410s answered, for tests
    bookmarks_sent: int = 0

    def record(self, resource: Any, version: int) -> None:
        kept = self._kept.setdefault(resource, collections.deque())
        kept.append(version)
        self._latest = max(self._latest, version)
        while len(kept) > self.size:
            self._expired[resource] = kept.popleft()

    def compact(self) -> None:
        """Forget every event so far: etcd's compaction at the current revision, which is one
        counter for every resource, so a watch from any older version gets 410."""
        self._compacted = self._latest
        for kept in self._kept.values():
            kept.clear()

    def gone(self, resource: Any, since: str) -> dict[str, Any] | None:
        """The ERROR event for a watch from `since` if events after it were dropped."""
        if since in {"", "0"} or not since.isdigit():
            return None
        expired = max(self._expired.get(resource, 0), self._compacted)
        if int(since) >= expired:
            return None
        self.gone_sent += 1
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {since} ({expired + 1})",
            "reason": "Expired",
            "code": 410,
        }
        return {"type": "ERROR", "object": status}

    def bookmark(self, api_version: str, kind: str, version: int) -> dict[str, Any]:
        self.bookmarks_sent += 1
        meta = {"resourceVersion": str(version)}
        return {
            "type": "BOOKMARK",
            "object": {"kind": kind, "apiVersion": api_version, "metadata": meta},
        }

"""What goes on and comes off the wire, for obsgen.deploy.http: nothing ambient, answers bounded, server text made safe.

- `proxies`: the operator's proxy for a URL, read from the environment by obsgen itself, because letting
  requests read it (`trust_env`) would also let it read ~/.netrc and send those credentials anywhere.
- `adapter`: requests' HTTPAdapter whose connections end the wait for an answer's head at the request's
  deadline (`HEAD.end`, set by the thread sending the request).
- `socket_of`: the socket under a streamed answer, so each read of its body waits only what is left.
- `shown`: server (or other foreign) text with its control characters escaped and cut to a length.
- `unreachable`: why a connection failed, in words that point at the fix (a TLS handshake with a plain
  http server, a name that does not resolve, a refused connection).
"""
from __future__ import annotations

import threading
import time
from typing import Any

SHOWN = 300  # characters of server text an error line quotes at most

HEAD = threading.local()  # .end: the deadline (monotonic) of the request this thread is sending, or None


def adapter() -> type:
    """requests' HTTPAdapter whose connections end the wait for an answer's head at the request's deadline:
    urllib3's timeouts bound each read of the socket, not their sum, so a server trickling its status line
    and headers one byte at a time would otherwise outlast any deadline. (Through a proxy, requests uses
    another pool manager, and only the per-read timeout applies to the head.)"""
    import requests
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def watched(base: type) -> type:
        class Watched(base):  # type: ignore[misc, valid-type]
            def getresponse(self, *args: Any, **kwargs: Any) -> Any:
                end, sock = getattr(HEAD, "end", None), self.sock
                timer = None
                if end is not None and sock is not None:
                    timer = threading.Timer(max(end - time.monotonic(), 0.0), _shut, (sock,))
                    timer.daemon = True
                    timer.start()
                try:
                    return super().getresponse(*args, **kwargs)
                finally:
                    if timer is not None:
                        timer.cancel()
        return Watched

    class Pool(HTTPConnectionPool):
        ConnectionCls = watched(HTTPConnection)

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = watched(HTTPSConnection)

    class Adapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    return Adapter


def _shut(sock: Any) -> None:
    """End a wait on a socket from another thread: its reads see the end of the stream."""
    import socket

    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def socket_of(raw: Any) -> Any:
    """The socket under a urllib3 response (through http.client's buffered reader), or None."""
    try:
        return raw._fp.fp.raw._sock
    except AttributeError:
        return None


def proxies(url: str) -> dict[str, str]:
    """The proxy for `url`'s scheme from the operator's environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
    upper or lower case), unless NO_PROXY names its host (a name, a domain suffix, an address, a CIDR
    block or `*`); read here because requests' own reading (trust_env) would also read ~/.netrc."""
    import ipaddress
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    host, scheme = parts.hostname or "", parts.scheme.lower()
    found = getproxies()
    proxy = found.get(scheme) or found.get("all")
    if not proxy:
        return {}
    if proxy_bypass(f"{host}:{parts.port}" if parts.port else host):
        return {}
    try:
        address = ipaddress.ip_address(host)
        for entry in found.get("no", "").replace(" ", "").split(","):
            if "/" in entry and address in ipaddress.ip_network(entry, strict=False):
                return {}
    except ValueError:
        pass
    return {scheme: proxy}


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: str, limit: int = SHOWN, *, lines: bool = False) -> str:
    """Server (or other foreign) text made safe to print: every control character -- terminal escapes,
    carriage returns, backspaces, C1 codes, bidirectional overrides -- written as an escape (`\\x1b`,
    `\\r`), so it can neither erase nor fake a line; then cut to `limit` characters with an ellipsis.
    `lines` keeps line breaks and tabs (and cuts each line on its own), for text of several lines."""
    if lines:
        return "\n".join(_escaped(line, limit, keep="\t") for line in text.split("\n"))
    return _escaped(text, limit)


def _escaped(text: str, limit: int, keep: str = "") -> str:
    out: list[str] = []
    size = 0
    for ch in text:
        if ch in _ESCAPES and ch not in keep:
            piece = _ESCAPES[ch]
        elif not ch.isprintable() and ch != " " and ch not in keep:
            code = ord(ch)
            piece = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
        else:
            piece = ch
        if size + len(piece) > limit:
            return "".join(out) + "\u2026"
        out.append(piece)
        size += len(piece)
    return "".join(out)


# OpenSSL's reasons for a handshake answered by something that does not speak TLS -- "HTTP/1.1 400" read
# as a TLS record (OpenSSL 1.1 and 3.0 say wrong version number, 3.2 and later record layer failure)
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL",
            "HTTP_REQUEST")


def unreachable(exc: BaseException, url: str) -> str:
    """Why a connection to `url` failed, as the end of `cannot reach X at URL…`: a TLS handshake that
    failed (with the fix when the server speaks plain http), a name that did not resolve, else the
    refused connection it most often is. Read from the chain of causes requests and urllib3 leave."""
    import re
    import socket
    import ssl
    from urllib.parse import urlsplit

    chain = _causes(exc)
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return (f": TLS certificate not accepted ({shown(str(tls.verify_message or tls.reason), 120)}; if it is "
                f"signed by your own CA, set REQUESTS_CA_BUNDLE to that CA's file)")
    if tls is not None and str(tls.reason or "") in _NOT_TLS:
        plain = re.sub(r"^https://", "http://", url, flags=re.IGNORECASE)
        return f": TLS handshake failed (is the server plain http? write {plain})"
    if tls is not None or any(type(e).__name__ == "SSLError" for e in chain):
        reason = shown(str(tls.reason or tls), 120) if tls is not None else "no reason given"
        return f": TLS handshake failed ({reason})"
    if any(isinstance(e, socket.gaierror) for e in chain):
        host = next((getattr(getattr(e, "conn", None), "host", None) for e in chain
                     if type(e).__name__ == "NameResolutionError"), None) or urlsplit(url).hostname
        return f": DNS lookup of {shown(str(host), 120)} failed (no such host name?)"
    return " (connection refused or DNS failure)"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception behind it: __cause__, __context__, and urllib3's `reason` (MaxRetryError)
    and requests' first argument (a ConnectionError wraps the MaxRetryError it was given)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is e for e in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args[:1]]
    return seen

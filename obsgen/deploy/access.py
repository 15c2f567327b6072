"""Who may get what: the credentials of a backend, and the only places they (and secret files) may go.

A spec can come from an untrusted pull request, so the spec alone never decides where a secret is
sent, which file is read or where obsgen writes: a token goes to an endpoint the operator gave (a flag
or OBSGEN_*_URL) or to a spec URL whose host the operator lists in OBSGEN_ALLOWED_HOSTS; a secret file
named in the spec (token_file, Mimir's *_file secrets) is read only under a directory listed in
OBSGEN_SECRET_DIRS, only when it is a regular file of at most 64 KiB, and a token only when it is one
line; a path the spec names for obsgen to write (rules_dir, config_file) is used only under a directory
listed in OBSGEN_WRITE_DIRS. A path or URL the operator gives is the operator's and used as given.
`connect` applies the first two before any request, `writable_path` the last before any read or write.
"""
from __future__ import annotations

import os

from obsgen.errors import ObsgenError
from obsgen.deploy.http import DEFAULT_PORTS, BackendError, Http
from obsgen.model import Backend as BackendSpec
from obsgen.model import Environment

ALLOWED_HOSTS = "OBSGEN_ALLOWED_HOSTS"  # comma-separated host or host:port: spec URLs that may get credentials
SECRET_DIRS = "OBSGEN_SECRET_DIRS"  # os.pathsep-separated directories: secret files obsgen itself may read
WRITE_DIRS = "OBSGEN_WRITE_DIRS"  # os.pathsep-separated directories: where the spec's paths may have obsgen write
SECRET_MAX = 64 << 10  # bytes: the largest secret file obsgen reads (a token, a webhook URL: one short line)


class AccessError(BackendError):
    """A secret obsgen will not send or read where the spec says, and what the operator can do about it."""

    def __init__(self, problem: str, fix: str = ""):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix = problem, fix


def credential(spec: BackendSpec, env_name: str) -> str | None:
    """The token named by token_env or token_file (read under OBSGEN_SECRET_DIRS, see `read_secret`),
    checked to fit in an HTTP header; None when the spec names none."""
    who = f"{spec.kind} ({env_name})"
    if spec.token_env:
        value = os.environ.get(spec.token_env)
        if not value:
            raise BackendError(f"{who}: environment variable {spec.token_env} is not set")
        return header_safe(value.strip(), spec.token_env, who)
    if spec.token_file:
        return header_safe(read_secret(spec.token_file, who, "token_file", "token"),
                           f"token_file {spec.token_file}", who)
    return None


def header_safe(token: str, ref: str, who: str) -> str:
    """`token` when an HTTP header can carry it as sent (printable ASCII, no space): a non-Latin-1 letter
    would fail deep in http.client, and a line break would add a header; else an AccessError naming `ref`."""
    if token.isascii() and token.isprintable() and " " not in token:
        return token
    raise AccessError(f"{who}: the token in {ref} holds a character an HTTP header cannot carry (only printable "
                      f"ASCII without spaces can be sent)", "check the token")


def connect(env: Environment, kind: str, label: str, url: str | None, mode: str | None = None
            ) -> tuple[BackendSpec, "Http"]:
    """The spec of one backend of an environment and an authenticated Http client for it.

    `url` is the operator's override (flag or OBSGEN_*_URL), None when the spec's URL is used. The
    token is read and sent only when that endpoint may have it (see `require_allowed`).
    """
    spec = env.backend(kind)
    if spec is None:
        raise BackendError(f"environment {env.name} has no {kind} backend in the spec")
    if mode is not None and spec.mode != mode:
        raise BackendError(f"{kind} ({env.name}): mode {spec.mode!r} is not supported by this client")
    endpoint_of(spec, env.name, url)
    ref = spec.token_env or spec.token_file
    token = None
    if ref:
        require_allowed(spec, env.name, url)  # before the token is even read
        token = credential(spec, env.name)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if spec.tenant and not (spec.tenant.isascii() and spec.tenant.isprintable()):
        raise BackendError(f"{kind} ({env.name}): the tenant {spec.tenant!r} holds a character an HTTP header "
                           f"cannot carry (only printable ASCII can be sent)")
    if spec.tenant:
        headers["X-Scope-OrgID"] = spec.tenant
    http = Http(f"{label} ({env.name})", url or spec.url, credential_hint=f": check {ref}" if ref else "",
                headers=headers)
    return spec, http


def endpoint_of(spec: BackendSpec, env_name: str, url: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) of the URL a backend is reached at: the override, else the spec's."""
    try:
        return parse_endpoint(url or spec.url)
    except ValueError as exc:
        if url:  # the CLI checks overrides where it reads them (checked_url); a library caller may not have
            raise BackendError(url_problem(f"--{spec.kind}-url / OBSGEN_{spec.kind.upper()}_URL", url,
                                           exc)) from None
        raise BackendError(f"{spec.kind} ({env_name}): the spec's URL {spec.url!r} is not an http(s) URL: "
                           f"{exc}") from None


def checked_url(value: str, where: str) -> str:
    """`value` when it is an http(s) base URL obsgen can use; else an ObsgenError naming `where` (the flag or
    environment variable it came from): `--pushgateway: '127.0.0.1:9091' is not a URL: write it as
    http://127.0.0.1:9091`.
    Every URL an operator gives (flags, OBSGEN_*_URL) is checked here, with the rules the spec's
    URLs are held to at use (`parse_endpoint`)."""
    try:
        parse_endpoint(value)
    except ValueError as exc:
        raise ObsgenError(url_problem(where, value, exc)) from None
    return value


def url_problem(where: str, value: str, why: ValueError | str) -> str:
    return f"{where}: {value!r} is not a URL: {why}"


def configuration_problems(env: Environment, urls: dict[str, str | None], kinds: tuple[str, ...] = ()
                           ) -> list[str]:
    """Everything about the backends `kinds` of an environment (default: all of them) that stops a request
    before it is made -- a URL that is not one, credentials the endpoint may not have, a token that is
    not set or not readable -- all at once, one line each, without a request. `urls` holds the operator's
    overrides by kind. A token is looked at only where it may go (see `require_allowed`)."""
    found: dict[str, list[str]] = {}  # problem -> the backend kinds it is about
    for kind in ("grafana", "prometheus", "alertmanager"):  # the order apply goes in
        spec = env.backend(kind)
        if spec is None or (kinds and kind not in kinds):
            continue
        url = urls.get(spec.kind)
        try:
            endpoint_of(spec, env.name, url)
            if spec.token_env or spec.token_file:
                require_allowed(spec, env.name, url)
                credential(spec, env.name)
        except BackendError as exc:
            text, prefix = str(exc), f"{spec.kind} ({env.name}): "
            # about this backend, or not (OBSGEN_ALLOWED_HOSTS itself malformed): the latter once
            found.setdefault(text.removeprefix(prefix), []).append(spec.kind if text.startswith(prefix) else "")
    # one token shared by two backends (Mimir's ruler and Alertmanager) is one problem
    return [f"{' and '.join(who)} ({env.name}): {text}" if all(who) else text for text, who in found.items()]


def require_allowed(spec: BackendSpec, env_name: str, url: str | None, what: str = "credentials") -> None:
    """Refuse to send credentials (or other secrets) to the spec's URL unless the operator allows it.

    An override URL (`url`, from a flag or OBSGEN_*_URL) is the operator's and allowed as given. The
    spec's URL is allowed when an entry of OBSGEN_ALLOWED_HOSTS names its host and port: `host:port`,
    or `host` for the scheme's default port (http 80, https 443). A plain entry allows https only (and
    http to a loopback host), so a pull request cannot move an allowed host to cleartext http; an
    entry `http://host[:port]` allows http to that host explicitly. Hosts compare case-insensitively
    and without a trailing dot; names are not resolved.
    """
    if url:
        return
    scheme, host, port = endpoint_of(spec, env_name, None)
    for allowed_scheme, allowed_host, allowed_port in allowed_hosts():
        schemes = (allowed_scheme,) if allowed_scheme else ("https", "http") if _loopback(host) else ("https",)
        wanted_port = allowed_port if allowed_port is not None else DEFAULT_PORTS[scheme]
        if allowed_host == host and wanted_port == port and scheme in schemes:
            return
    entry = host_port(host, port) if scheme == "https" or _loopback(host) else f"http://{host_port(host, port)}"
    raise AccessError(f"{spec.kind} ({env_name}): the spec's URL {spec.url} is not an allowed host for {what}",
                      f"if it is yours, add {entry} to {ALLOWED_HOSTS} (set outside the spec), "
                      f"or pass --{spec.kind}-url")


def allowed_hosts() -> list[tuple[str | None, str, int | None]]:
    """(scheme or None, host, port or None) for each entry of OBSGEN_ALLOWED_HOSTS."""
    from urllib.parse import urlsplit

    found = []
    for entry in os.environ.get(ALLOWED_HOSTS, "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        scheme, _, rest = entry.rpartition("://")
        try:
            parts = urlsplit("//" + rest)
            host, port = parts.hostname, parts.port
            ok = bool(host) and parts.netloc == rest and "@" not in rest and port != 0 and \
                scheme.lower() in ("", *DEFAULT_PORTS)
        except ValueError:
            ok = False
        if not ok:
            raise BackendError(f"{ALLOWED_HOSTS}: {entry!r} is not host, host:port or http(s)://host[:port] "
                               f"(for example grafana.example.com:443)")
        found.append((scheme.lower() or None, _host(host), port))
    return found


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) base URL, the port defaulted by scheme; ValueError says what is off.

    Anything two URL parsers could read as different hosts (a backslash, user info) is refused, so the
    host checked is the host requests connects to.
    """
    from urllib.parse import urlsplit

    if not url:
        raise ValueError("it is empty")
    if any(c.isspace() or c == "\\" for c in url) or not url.isprintable():
        raise ValueError("it contains whitespace, a backslash or a control character")
    if "://" not in url:
        raise ValueError(f"write it as http://{url.lstrip(':/')}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("its port is not a number from 1 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise ValueError("user info (user:password@) is not supported; credentials come from token_env / "
                         "token_file")
    if not parts.hostname:
        raise ValueError("it has no host")
    if port == 0:
        raise ValueError("its port is not a number from 1 to 65535")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("a base URL has no ?query or #fragment")
    try:
        host, port = _host(parts.hostname), port or DEFAULT_PORTS[scheme]
        from urllib3.util import parse_url

        other = parse_url(url)
        same = _host((other.host or "").strip("[]")) == host and (other.port or DEFAULT_PORTS[scheme]) == port
    except ValueError:  # urllib3's LocationParseError is one
        same = False
    if not same:
        raise ValueError("its host is ambiguous")
    return scheme, host, port


def _host(name: str) -> str:
    """A host name as compared: lower case, no trailing dot, an international name in its IDNA form."""
    name = name.lower().rstrip(".")
    return name if name.isascii() else name.encode("idna").decode("ascii")


def host_port(host: str, port: int) -> str:
    """host:port as written in OBSGEN_ALLOWED_HOSTS (IPv6 addresses in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def secret_file(path: str, who: str, field: str = "secret file", what: str = "secret") -> str:
    """The real path of a secret file named in the spec (`field`: which spec field names it), when it lies
    under a directory the operator lists in OBSGEN_SECRET_DIRS (after resolving symlinks and `..` on both
    sides) and, when it exists, is a regular file of at most SECRET_MAX bytes -- so that reading it can
    neither hang (a FIFO) nor fill memory (/dev/zero); else an AccessError. Checked without opening it."""
    import stat

    real = os.path.realpath(path)
    dirs = _dirs(SECRET_DIRS)
    if not any(os.path.commonpath([real, d]) == d for d in dirs):
        resolved = f" (which resolves to {real})" if real != os.path.abspath(path) else ""
        unset = "" if dirs else " (not set)"
        raise AccessError(f"{who}: the {field} {path}{resolved} named in the spec is not under a directory "
                          f"listed in {SECRET_DIRS}{unset}",
                          f"if it is yours, add {os.path.dirname(real)} to {SECRET_DIRS} (set outside the spec)")
    try:
        info = os.stat(real)
    except OSError:
        return real  # reading it says why it cannot be read
    if not stat.S_ISREG(info.st_mode):
        raise AccessError(f"{who}: {field} {path} is not a regular file",
                          f"write the {what} to a file under {SECRET_DIRS}")
    if info.st_size > SECRET_MAX:
        raise AccessError(f"{who}: {field} {path} is larger than {SECRET_MAX >> 10} KiB",
                          f"a {what} is one short line")
    return real


def read_secret(path: str, who: str, field: str = "secret file", what: str = "secret") -> str:
    """The one line a secret file named in the spec holds, stripped: read only as `secret_file` allows,
    opened without blocking and checked again once open (the file may have been swapped since), at most
    SECRET_MAX bytes. Every refusal is an AccessError naming `field` and what to do."""
    import stat

    real = secret_file(path, who, field, what)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise AccessError(f"{who}: cannot read {field} {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AccessError(f"{who}: {field} {path} is not a regular file",
                              f"write the {what} to a file under {SECRET_DIRS}")
        data = b""
        while len(data) <= SECRET_MAX:
            chunk = os.read(fd, SECRET_MAX + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise AccessError(f"{who}: cannot read {field} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > SECRET_MAX:
        raise AccessError(f"{who}: {field} {path} is larger than {SECRET_MAX >> 10} KiB", f"a {what} is one short line")
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise AccessError(f"{who}: {field} {path} is not UTF-8 text", f"a {what} is one line of text") from None
    if not value:
        raise AccessError(f"{who}: {field} {path} is empty")
    if "\n" in value or "\r" in value:
        raise AccessError(f"{who}: {field} {path} holds more than one line", f"a {what} is one line")
    return value


def writable_path(path: str, who: str, field: str, flag: str, *, directory: bool = False) -> str:
    """`path`, named by the spec's `field` for obsgen to write (rules_dir, config_file), when it lies under
    a directory the operator lists in OBSGEN_WRITE_DIRS -- both as written (with `..` resolved) and with
    every symlink resolved, so neither `..` nor a symlink leads out; else an AccessError naming the
    variable and `flag`, the operator's way to give the path instead. Call it only for the spec's paths:
    a path the operator gives (`flag`, OBSGEN_*) is the operator's and used as given."""
    real, lexical = os.path.realpath(path), os.path.abspath(path)
    dirs = _dirs(WRITE_DIRS)
    roots = set(dirs) | {os.path.abspath(d) for d in os.environ.get(WRITE_DIRS, "").split(os.pathsep) if d.strip()}

    def under(p: str) -> bool:
        return any(os.path.commonpath([p, root]) == root for root in roots)

    if under(real) and under(lexical):
        return path
    resolved = f" (which resolves to {real})" if real != lexical else ""
    unset = "" if dirs else " (not set)"
    add = real if directory else os.path.dirname(real)
    raise AccessError(f"{who}: the {field} {path}{resolved} named in the spec is not under a directory listed "
                      f"in {WRITE_DIRS}{unset}",
                      f"if it is yours, add {add} to {WRITE_DIRS} (set outside the spec), or pass {flag}")


def _dirs(variable: str) -> list[str]:
    """The directories an os.pathsep-separated variable lists, each with its symlinks resolved."""
    return [os.path.realpath(d) for d in os.environ.get(variable, "").split(os.pathsep) if d.strip()]

"""A dependency-free Python client for sobot-broker.

sobot-broker holds one live Sobot token per (tenant, region) and serves it, and whole Sobot business
calls, as JSON-RPC 2.0 over a Unix socket: one JSON object per ``\\n``-terminated line, both ways.
This module speaks that protocol with the standard library only (Python 3.9+)::

    from sobot_broker_client import BrokerClient

    client = BrokerClient()                      # $SOBOT_BROKER_SOCKET, else <home>/broker.sock
    token = client.token("acme", region="sg")    # Token(tenant='acme', region='sg', ...), value hidden
    reply = client.request("acme", "/api/ws/5/ticket/query", body={"page_no": 1})

No token or app key ever appears in an exception message or a ``repr``.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import os
import socket
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

__all__ = [
    "BrokerClient",
    "Token",
    "Reply",
    "TokenExpired",
    "is_token_expired",
    "default_socket_path",
    "BrokerError",
    "BrokerUnavailable",
    "BrokerProtocolError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "UnknownTenant",
    "PermissionDenied",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
]

__version__ = "0.1.0"

#: Replies longer than this (16 MiB) are refused with ``BrokerProtocolError`` instead of being buffered.
MAX_REPLY_BYTES = 16 << 20
#: The broker answers a line longer than this (1 MiB, newline excluded) with -32600 and closes the
#: connection; the client refuses such a request before sending it.
MAX_REQUEST_BYTES = 1 << 20

#: Sobot's ``ret_code`` for "token expired, get a new one".
TOKEN_EXPIRED_RET_CODE = "900002"

_T = TypeVar("_T")
PathLike = Union[str, "os.PathLike[str]"]


# MARK: - Errors


class BrokerError(Exception):
    """Any failure of a broker call.

    ``code`` is the JSON-RPC error code for errors the broker answered (``None`` for failures of the
    client itself: ``BrokerUnavailable``, ``BrokerProtocolError``), ``message`` a one-line text,
    ``data`` the error's ``data`` member, if any (for -32003: ``{"ret_code", "ret_msg"}``).
    """

    #: The JSON-RPC code this class stands for (``None`` for client-side failures).
    default_code: Optional[int] = None

    def __init__(self, message: str, code: Optional[int] = None, data: Any = None) -> None:
        self.message: str = _one_line(message)
        self.code: Optional[int] = self.default_code if code is None else code
        self.data: Any = data
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message if self.code is None else f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BrokerUnavailable(BrokerError):
    """The broker could not be reached or stopped answering: no socket, refused, closed, timed out."""


class BrokerProtocolError(BrokerError):
    """The broker's reply was not a JSON-RPC 2.0 reply to this request: not JSON, larger than the
    client's limit, or for another request id. The connection is discarded."""


class ParseError(BrokerError):
    """-32700: the broker could not parse the request line."""

    default_code = -32700


class InvalidRequest(BrokerError):
    """-32600: not a valid JSON-RPC request (e.g. a line over 1 MiB)."""

    default_code = -32600


class MethodNotFound(BrokerError):
    """-32601: no such method (or its module is not served)."""

    default_code = -32601


class InvalidParams(BrokerError):
    """-32602: the params were refused (unknown names, bad tenant id, a refused path, ...)."""

    default_code = -32602


class InternalError(BrokerError):
    """-32603: the broker failed internally."""

    default_code = -32603


class UnknownTenant(BrokerError):
    """-32001: unknown tenant or region."""

    default_code = -32001


class PermissionDenied(BrokerError):
    """-32002: this caller may not call that method for that tenant (see ``sobot-broker access``)."""

    default_code = -32002


class UpstreamRejected(BrokerError):
    """-32003: Sobot rejected the call; ``ret_code`` and ``ret_msg`` say how."""

    default_code = -32003

    @property
    def ret_code(self) -> Optional[str]:
        """Sobot's ``ret_code``, e.g. ``"900003"``, when the broker passed it on."""
        value = self.data.get("ret_code") if isinstance(self.data, dict) else None
        return None if value is None else str(value)

    @property
    def ret_msg(self) -> Optional[str]:
        """Sobot's ``ret_msg``, when the broker passed it on."""
        value = self.data.get("ret_msg") if isinstance(self.data, dict) else None
        return None if value is None else str(value)


class UpstreamUnavailable(BrokerError):
    """-32004: Sobot could not be reached (network, timeout, HTTP 5xx, unreadable reply)."""

    default_code = -32004


_ERRORS_BY_CODE: Dict[int, type] = {
    cls.default_code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        UnknownTenant,
        PermissionDenied,
        UpstreamRejected,
        UpstreamUnavailable,
    )
}


class TokenExpired(Exception):
    """Raise this from the function given to ``BrokerClient.with_token`` when Sobot answered
    ``ret_code`` 900002 (token expired): ``with_token`` then reports the token and tries once more.

    ``reply`` may carry Sobot's reply for the caller's own use; it is never shown in the message.
    """

    def __init__(self, message: str = "Sobot answered 900002: token expired", reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply


def is_token_expired(reply: Any) -> bool:
    """True when a Sobot reply says the token expired (``ret_code`` ``"900002"``).

    Takes Sobot's decoded JSON reply (a dict), or a ``Reply`` from ``BrokerClient.request`` (its body
    is looked at). Anything else is False.
    """
    if isinstance(reply, Reply):
        reply = reply.body
    if not isinstance(reply, Mapping):
        return False
    code = reply.get("ret_code")
    if isinstance(code, bool):
        return False
    if isinstance(code, int):
        return code == int(TOKEN_EXPIRED_RET_CODE)
    return isinstance(code, str) and code.strip() == TOKEN_EXPIRED_RET_CODE


# MARK: - Results


@dataclasses.dataclass(frozen=True)
class Token:
    """A token served by the broker. ``repr`` never shows the token itself.

    ``expires_at`` is Unix seconds; ``expires_in`` the seconds it had left when served.
    """

    token: str = dataclasses.field(repr=False)
    tenant: str
    region: str
    expires_at: int
    expires_in: int

    def __str__(self) -> str:
        return repr(self)

    @classmethod
    def from_result(cls, result: Any) -> "Token":
        """Builds a Token from a ``token.get``/``token.invalidate`` result."""
        if not isinstance(result, dict):
            raise BrokerProtocolError("token reply is not an object")
        try:
            token = result["token"]
            if not isinstance(token, str) or not token:
                raise BrokerProtocolError("token reply has no token")
            return cls(
                token=token,
                tenant=str(result["tenant"]),
                region=str(result["region"]),
                expires_at=int(result["expires_at"]),
                expires_in=int(result["expires_in"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            # Never the result itself in the message: it holds the token.
            raise BrokerProtocolError(f"token reply lacks or mangles a field ({type(error).__name__})") from None


@dataclasses.dataclass(frozen=True)
class Reply:
    """What ``sobot.request`` returns: Sobot's HTTP status and its JSON reply, as is."""

    status: int
    body: Any

    @property
    def ret_code(self) -> Optional[str]:
        """Sobot's ``ret_code`` (``"000000"`` is success), or None when the body has none."""
        code = self.body.get("ret_code") if isinstance(self.body, dict) else None
        return None if code is None else str(code)

    @property
    def ok(self) -> bool:
        """HTTP 2xx and ``ret_code`` ``000000``."""
        return 200 <= self.status < 300 and self.ret_code == "000000"


# MARK: - Socket path


def default_socket_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """The socket the daemon listens on by default, resolved as the daemon does:
    ``$SOBOT_BROKER_SOCKET``, else ``<home>/broker.sock`` with home ``$SOBOT_BROKER_HOME``, else
    ``$XDG_STATE_HOME/sobot-broker`` (when set and not empty), else ``~/.local/state/sobot-broker``.
    """
    env = os.environ if environ is None else environ
    socket_path = env.get("SOBOT_BROKER_SOCKET")
    if socket_path is not None:
        return socket_path
    home = env.get("SOBOT_BROKER_HOME")
    if home is None:
        state = env.get("XDG_STATE_HOME")
        if state:
            home = state + "/sobot-broker"
        else:
            user_home = env.get("HOME") or os.path.expanduser("~")
            home = user_home + "/.local/state/sobot-broker"
    return home + "/broker.sock"


# MARK: - Client


class _Connection:
    """One connected socket and what it read past the last reply (nothing, in a healthy exchange)."""

    __slots__ = ("sock", "ids", "pid", "idle_since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ids = itertools.count(1)
        self.pid = os.getpid()
        self.idle_since = 0.0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def looks_alive(self) -> bool:
        """False when the daemon closed this idle connection (its idle timeout, a restart) or sent
        something unasked: either way it must not carry another request."""
        try:
            self.sock.settimeout(0.0)
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True  # nothing to read: still open, and quiet as it should be
        except OSError:
            return False
        # b"" means the daemon closed it; any byte is data nobody asked for. Neither is reusable.
        return False


def _close_all(connections: List[_Connection]) -> None:
    while connections:
        connections.pop().close()


class BrokerClient:
    """A client of the sobot-broker daemon. Safe to share between threads.

    Each call takes an idle connection (or opens one), sends one request line, reads one reply line,
    and puts the connection back; at most ``max_idle`` connections are kept open between calls
    (``max_idle=0``: one connection per call). Calls from several threads run at once on connections
    of their own. ``timeout`` (seconds) bounds each call as a whole: connecting, sending and reading.
    """

    def __init__(
        self,
        socket_path: Optional[PathLike] = None,
        timeout: Optional[float] = 15.0,
        *,
        max_idle: int = 4,
        idle_ttl: float = 60.0,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        """``socket_path`` defaults to ``default_socket_path()``. ``timeout`` None waits forever
        (not recommended). A connection idle for more than ``idle_ttl`` seconds is closed rather than
        reused (keep it below the daemon's ``serve --idle-timeout``, 300 s by default).
        ``max_reply_bytes`` caps one reply line (16 MiB by default)."""
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive or None")
        if max_idle < 0:
            raise ValueError("max_idle must be 0 or more")
        if idle_ttl < 0:
            raise ValueError("idle_ttl must be 0 or more")
        if max_reply_bytes <= 0:
            raise ValueError("max_reply_bytes must be positive")
        self.socket_path: str = os.fspath(socket_path) if socket_path is not None else default_socket_path()
        self.timeout: Optional[float] = timeout
        self.max_idle: int = max_idle
        self.idle_ttl: float = idle_ttl
        self.max_reply_bytes: int = max_reply_bytes
        self._lock = threading.Lock()
        self._idle: List[_Connection] = []
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def __repr__(self) -> str:
        return f"BrokerClient(socket_path={self.socket_path!r}, timeout={self.timeout!r})"

    def __enter__(self) -> "BrokerClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the idle connections. The client stays usable: later calls connect again."""
        with self._lock:
            _close_all(self._idle)

    # MARK: Methods

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        """Sends one JSON-RPC request and returns its ``result``.

        Raises a ``BrokerError`` subclass for an error reply (chosen by code: ``UnknownTenant``,
        ``PermissionDenied``, ``InvalidParams``, ...), ``BrokerUnavailable`` when the daemon cannot be
        reached or does not answer within ``timeout``, ``BrokerProtocolError`` for a reply that is not
        JSON-RPC, or larger than ``max_reply_bytes``.
        """
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a non-empty string")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError("params must be a mapping (the broker takes named params)")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        connection, reused = self._checkout(deadline)
        try:
            try:
                reply, request_id = self._exchange(connection, method, params, deadline)
            except _StaleConnection:
                connection.close()
                # A reused connection the daemon closed before answering: it was idle, so the daemon
                # had not read the request. Sent again on a new connection, except sobot.request, which
                # may be a non-idempotent Sobot call and is never sent twice by this client.
                if not reused or method == "sobot.request":
                    raise BrokerUnavailable(f"sobot-broker at {self.socket_path} closed the connection without answering") from None
                connection, reused = self._connect(deadline), False
                try:
                    reply, request_id = self._exchange(connection, method, params, deadline)
                except _StaleConnection:
                    raise BrokerUnavailable(f"sobot-broker at {self.socket_path} closed the connection without answering") from None
            result = self._result(reply, request_id)
        except BaseException as error:
            if isinstance(error, BrokerError) and error.code is not None:
                # An error reply: the exchange itself went well and the connection can carry more.
                self._checkin(connection)
            else:
                connection.close()
            raise
        self._checkin(connection)
        return result

    def health(self) -> Dict[str, Any]:
        """``broker.health``: ``{status, version, uptime_s, tenants, tokens_valid, store, ...}``."""
        result = self.call("broker.health")
        if not isinstance(result, dict):
            raise BrokerProtocolError("broker.health reply is not an object")
        return result

    def token(self, tenant: str, region: Optional[str] = None) -> Token:
        """``token.get``: the tenant's live token (``region`` may be left out when it has one)."""
        return Token.from_result(self.call("token.get", _params(tenant=tenant, region=region)))

    def invalidate(self, tenant: str, token: Union[str, Token], region: Optional[str] = None) -> Token:
        """``token.invalidate``: report a token Sobot called expired (ret_code 900002) and get a fresh
        one. The broker refreshes upstream only if ``token`` is still its current one (once, however
        many callers report it); otherwise it just returns the current token."""
        if isinstance(token, Token):
            region = token.region if region is None else region
            token = token.token
        return Token.from_result(self.call("token.invalidate", _params(tenant=tenant, region=region, token=token)))

    def request(
        self,
        tenant: str,
        path: str,
        method: str = "POST",
        query: Optional[Mapping[str, Union[str, int, float]]] = None,
        body: Any = None,
        language: Optional[str] = None,
        region: Optional[str] = None,
    ) -> Reply:
        """``sobot.request``: call any Sobot v5 business endpoint through the broker, which adds the
        token and, on 900002, refreshes it and retries once. ``method`` is ``POST`` or ``GET``;
        ``query`` an object of strings/numbers; ``body`` any JSON (POST only); ``language`` ``en`` or
        ``zh``. Returns Sobot's HTTP status and JSON reply as is: a ``ret_code`` other than
        ``000000`` is in ``reply.body``, not raised."""
        result = self.call(
            "sobot.request",
            _params(tenant=tenant, region=region, path=path, method=method, query=query, body=body, language=language),
        )
        if not isinstance(result, dict) or not isinstance(result.get("status"), int) or "body" not in result:
            raise BrokerProtocolError("sobot.request reply lacks status or body")
        return Reply(status=result["status"], body=result["body"])

    def with_token(self, tenant: str, fn: Callable[[str], _T], region: Optional[str] = None) -> _T:
        """Calls ``fn(token)`` with the tenant's token. If ``fn`` raises ``TokenExpired`` (Sobot said
        900002), reports that token with ``token.invalidate`` and calls ``fn`` once more with the fresh
        token; a second ``TokenExpired`` propagates. Any other exception propagates at once."""
        current = self.token(tenant, region)
        try:
            return fn(current.token)
        except TokenExpired:
            pass  # retried below, outside this block, so a second failure does not chain the first
        fresh = self.invalidate(tenant, current.token, region=current.region)
        return fn(fresh.token)

    def tenants(self) -> List[Dict[str, Any]]:
        """``tenant.list``: ``[{id, name, regions:[{region, appid, token_state, expires_at?}]}]``."""
        result = self.call("tenant.list")
        if not isinstance(result, dict) or not isinstance(result.get("tenants"), list):
            raise BrokerProtocolError("tenant.list reply lacks tenants")
        return result["tenants"]

    def modules(self) -> List[Dict[str, Any]]:
        """``module.list``: ``[{name, status, version, summary, methods}]``."""
        result = self.call("module.list")
        if not isinstance(result, dict) or not isinstance(result.get("modules"), list):
            raise BrokerProtocolError("module.list reply lacks modules")
        return result["modules"]

    # MARK: Connections

    def _checkout(self, deadline: Optional[float]) -> Tuple[_Connection, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if connection.pid != os.getpid():
                    # Inherited across fork(): the parent may be using it. Drop our copy, never shut it down.
                    connection.close()
                    continue
                if now - connection.idle_since <= self.idle_ttl and connection.looks_alive():
                    return connection, True
                connection.close()
        return self._connect(deadline), False

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle and connection.pid == os.getpid():
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self, deadline: Optional[float]) -> _Connection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline, self.socket_path, "connecting"))
            sock.connect(self.socket_path)
        except socket.timeout:
            sock.close()
            raise BrokerUnavailable(f"timed out connecting to sobot-broker at {self.socket_path}") from None
        except OSError as error:
            sock.close()
            raise BrokerUnavailable(_connect_failure(self.socket_path, error)) from None
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _exchange(
        self,
        connection: _Connection,
        method: str,
        params: Optional[Mapping[str, Any]],
        deadline: Optional[float],
    ) -> Tuple[Any, int]:
        request_id = next(connection.ids)
        request: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = dict(params)
        try:
            line = json.dumps(request, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as error:
            # The params may hold a token: name the problem, not the value.
            raise TypeError(f"params are not JSON-serialisable: {type(error).__name__}") from None
        if len(line) > MAX_REQUEST_BYTES:
            raise InvalidRequest(f"request is {len(line)} bytes; the broker accepts lines of at most {MAX_REQUEST_BYTES}")
        sock = connection.sock
        try:
            sock.settimeout(_remaining(deadline, self.socket_path, "sending"))
            sock.sendall(line + b"\n")
        except socket.timeout:
            raise BrokerUnavailable(f"timed out sending to sobot-broker at {self.socket_path}") from None
        except (BrokenPipeError, ConnectionResetError):
            raise _StaleConnection() from None
        except OSError as error:
            raise BrokerUnavailable(f"lost the connection to sobot-broker at {self.socket_path}: {_reason(error)}") from None
        raw = self._read_line(sock, deadline)
        try:
            reply = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise BrokerProtocolError(
                f"sobot-broker at {self.socket_path} sent a line that is not JSON ({len(raw)} bytes)"
            ) from None
        return reply, request_id

    def _read_line(self, sock: socket.socket, deadline: Optional[float]) -> bytes:
        """One reply line, without its newline. Raises ``_StaleConnection`` on EOF before any byte."""
        buffer = bytearray()
        while True:
            try:
                sock.settimeout(_remaining(deadline, self.socket_path, "waiting for a reply"))
                chunk = sock.recv(65536)
            except socket.timeout:
                raise BrokerUnavailable(
                    f"timed out after {self.timeout:g} s waiting for sobot-broker at {self.socket_path}"
                ) from None
            except ConnectionResetError:
                if not buffer:
                    raise _StaleConnection() from None
                raise BrokerUnavailable(f"sobot-broker at {self.socket_path} reset the connection mid-reply") from None
            except OSError as error:
                raise BrokerUnavailable(f"lost the connection to sobot-broker at {self.socket_path}: {_reason(error)}") from None
            if not chunk:
                if not buffer:
                    raise _StaleConnection()
                raise BrokerUnavailable(f"sobot-broker at {self.socket_path} closed the connection mid-reply")
            newline = chunk.find(b"\n")
            if newline < 0:
                buffer += chunk
                if len(buffer) > self.max_reply_bytes:
                    raise BrokerProtocolError(
                        f"reply from sobot-broker is larger than {self.max_reply_bytes} bytes; refused"
                    )
                continue
            buffer += chunk[:newline]
            if len(buffer) > self.max_reply_bytes:
                raise BrokerProtocolError(f"reply from sobot-broker is larger than {self.max_reply_bytes} bytes; refused")
            if newline + 1 != len(chunk):
                # One request in flight per connection: bytes after the reply are a protocol breach.
                raise BrokerProtocolError("sobot-broker sent more than one reply line to one request")
            return bytes(buffer)

    def _result(self, reply: Any, request_id: int) -> Any:
        if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
            raise BrokerProtocolError("reply is not a JSON-RPC 2.0 object")
        error = reply.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise BrokerProtocolError("reply's error is not an object")
            code = error.get("code")
            message = error.get("message")
            if not isinstance(code, int) or isinstance(code, bool):
                raise BrokerProtocolError("reply's error has no integer code")
            if reply.get("id") not in (request_id, None):
                raise BrokerProtocolError("reply is for another request id")
            cls = _ERRORS_BY_CODE.get(code, BrokerError)
            raise cls(str(message) if message is not None else "error", code=code, data=error.get("data"))
        if reply.get("id") != request_id:
            raise BrokerProtocolError("reply is for another request id")
        if "result" not in reply:
            raise BrokerProtocolError("reply has neither result nor error")
        return reply["result"]


class _StaleConnection(Exception):
    """The daemon closed the connection before answering anything (e.g. an idle connection it timed out)."""


def _params(**members: Any) -> Dict[str, Any]:
    """The members that are not None: the broker rejects unknown names and most explicit nulls."""
    return {name: value for name, value in members.items() if value is not None}


def _remaining(deadline: Optional[float], socket_path: str, doing: str) -> Optional[float]:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise BrokerUnavailable(f"timed out {doing} (sobot-broker at {socket_path})")
    return left


def _reason(error: OSError) -> str:
    return _one_line(error.strerror or type(error).__name__)


def _connect_failure(socket_path: str, error: OSError) -> str:
    reason = _reason(error)
    if error.errno in (errno.ENOENT, errno.ECONNREFUSED):
        return f"cannot connect to sobot-broker at {socket_path}: {reason} (is `sobot-broker serve` running?)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"cannot connect to sobot-broker at {socket_path}: {reason} (see `sobot-broker access grant`)"
    return f"cannot connect to sobot-broker at {socket_path}: {reason}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())

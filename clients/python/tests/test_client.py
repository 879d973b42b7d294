"""Tests of sobot_broker_client.

``BrokerTests`` run against a real sobot-broker daemon and its built-in Sobot simulator, as started by
``clients/python/run_tests.sh``: they need ``SOBOT_BROKER_SOCKET`` (the daemon, with tenant ``acme``,
region ``sg``, appid ``1``, app key ``2``) and ``SOBOT_SIMULATOR_URL``, and are skipped without them.
``ProtocolRobustnessTests`` drive the client against small fake servers that misbehave on purpose
(garbage, silence, huge lines), which a real daemon never does; ``HelperTests`` need nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sobot_broker_client import (  # noqa: E402
    BrokerClient,
    BrokerError,
    BrokerProtocolError,
    BrokerUnavailable,
    InvalidParams,
    InvalidRequest,
    PermissionDenied,
    Reply,
    Token,
    TokenExpired,
    UnknownTenant,
    UpstreamRejected,
    default_socket_path,
    is_token_expired,
)

SOCKET = os.environ.get("SOBOT_BROKER_SOCKET")
SIMULATOR = os.environ.get("SOBOT_SIMULATOR_URL")
TENANT, REGION, APPID, APP_KEY = "acme", "sg", "1", "2"
TICKET_QUERY = "/api/ws/5/ticket/query"


def simulator_call(path: str, token: str, body: Any) -> Dict[str, Any]:
    """POSTs JSON to the simulator as a Sobot consumer would, with the ``token`` header."""
    assert SIMULATOR is not None
    request = urllib.request.Request(
        SIMULATOR + path,
        data=json.dumps(body).encode(),
        headers={"token": token, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def revoke_broker_token() -> None:
    """Calls get_token behind the broker's back, as a rogue service would: the simulator issues a new
    token and revokes the broker's, which the broker does not know yet."""
    assert SIMULATOR is not None
    create_time = str(int(time.time()))
    sign = hashlib.md5((APPID + create_time + APP_KEY).encode()).hexdigest()
    query = urllib.parse.urlencode({"appid": APPID, "create_time": create_time, "sign": sign})
    with urllib.request.urlopen(f"{SIMULATOR}/api/get_token?{query}", timeout=10) as response:
        reply = json.loads(response.read())
    assert reply["ret_code"] == "000000", reply["ret_code"]


def ticket_query(token: str) -> Dict[str, Any]:
    """A consumer's own Sobot call: raises TokenExpired on 900002, as with_token expects."""
    reply = simulator_call(TICKET_QUERY, token, {"page_no": 1})
    if is_token_expired(reply):
        raise TokenExpired(reply=reply)
    return reply


@unittest.skipUnless(SOCKET and SIMULATOR, "needs a daemon: run clients/python/run_tests.sh BINARY")
class BrokerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.client = BrokerClient(SOCKET, timeout=20)
        self.addCleanup(self.client.close)

    def test_health(self) -> None:
        health = self.client.health()
        self.assertEqual(health["status"], "ok")
        self.assertIsInstance(health["version"], str)
        self.assertGreaterEqual(health["tenants"], 1)

    def test_default_socket_path_comes_from_the_environment(self) -> None:
        client = BrokerClient()
        self.addCleanup(client.close)
        self.assertEqual(client.socket_path, SOCKET)
        self.assertEqual(client.health()["status"], "ok")

    def test_token(self) -> None:
        token = self.client.token(TENANT)
        self.assertIsInstance(token, Token)
        self.assertEqual((token.tenant, token.region), (TENANT, REGION))
        self.assertTrue(token.token)
        self.assertGreater(token.expires_in, 0)
        self.assertLessEqual(token.expires_in, 3600)
        self.assertAlmostEqual(token.expires_at, time.time() + token.expires_in, delta=5)
        self.assertEqual(self.client.token(TENANT, region=REGION).token, token.token)

    def test_token_repr_and_str_hide_the_token(self) -> None:
        token = self.client.token(TENANT, REGION)
        for text in (repr(token), str(token), f"{token}", repr([token])):
            self.assertNotIn(token.token, text)
            self.assertIn("acme", text)

    def test_invalidate_refreshes_the_current_token_and_not_a_stale_one(self) -> None:
        first = self.client.token(TENANT, REGION)
        fresh = self.client.invalidate(TENANT, first.token, region=REGION)
        self.assertNotEqual(fresh.token, first.token)
        self.assertEqual((fresh.tenant, fresh.region), (TENANT, REGION))
        # The same report again is stale: the broker answers its current token, without a refresh.
        again = self.client.invalidate(TENANT, first.token)
        self.assertEqual(again.token, fresh.token)
        self.assertEqual(self.client.token(TENANT).token, fresh.token)
        # A Token object may be reported as is.
        self.assertEqual(self.client.invalidate(TENANT, first).token, fresh.token)

    def test_with_token_passes_the_live_token(self) -> None:
        seen: List[str] = []

        def use(token: str) -> str:
            seen.append(token)
            return "done"

        self.assertEqual(self.client.with_token(TENANT, use), "done")
        self.assertEqual(seen, [self.client.token(TENANT).token])

    def test_with_token_retries_once_after_a_revoked_token(self) -> None:
        stale = self.client.token(TENANT, REGION).token
        revoke_broker_token()
        self.assertEqual(self.client.token(TENANT).token, stale, "the broker cannot know yet")
        seen: List[str] = []

        def use(token: str) -> Dict[str, Any]:
            seen.append(token)
            return ticket_query(token)

        reply = self.client.with_token(TENANT, use, region=REGION)
        self.assertEqual(reply["ret_code"], "000000")
        self.assertEqual(len(seen), 2)
        self.assertEqual(seen[0], stale)
        self.assertNotEqual(seen[1], stale)
        self.assertEqual(self.client.token(TENANT).token, seen[1])

    def test_with_token_propagates_a_second_token_expired(self) -> None:
        seen: List[str] = []

        def always_expired(token: str) -> None:
            seen.append(token)
            raise TokenExpired()

        with self.assertRaises(TokenExpired) as raised:
            self.client.with_token(TENANT, always_expired)
        self.assertEqual(len(seen), 2)
        self.assertNotEqual(seen[0], seen[1])
        self.assertIsNone(raised.exception.__context__, "the first TokenExpired is not chained")

    def test_with_token_does_not_retry_other_errors(self) -> None:
        before = self.client.token(TENANT).token
        seen: List[str] = []

        def broken(token: str) -> None:
            seen.append(token)
            raise ValueError("not a token problem")

        with self.assertRaises(ValueError):
            self.client.with_token(TENANT, broken)
        self.assertEqual(seen, [before])
        self.assertEqual(self.client.token(TENANT).token, before, "nothing was invalidated")

    def test_request_forwards_query_body_and_language(self) -> None:
        body = {"page_no": 1, "status": "open", "tags": ["a", "b"], "note": "ünïcode {dc_test}"}
        reply = self.client.request(
            TENANT, TICKET_QUERY, query={"page_size": 20, "q": "a b&c"}, body=body, language="en"
        )
        self.assertIsInstance(reply, Reply)
        self.assertEqual(reply.status, 200)
        self.assertTrue(reply.ok)
        self.assertEqual(reply.ret_code, "000000")
        item = reply.body["item"]
        self.assertEqual(item["method"], "POST")
        self.assertEqual(item["path"], TICKET_QUERY)
        self.assertEqual(urllib.parse.parse_qs(item["query"]), {"page_size": ["20"], "q": ["a b&c"]})
        self.assertEqual(item["body"], body)
        self.assertEqual(item["language"], "en")
        self.assertEqual(item["token_headers"], 1)

    def test_request_get_with_region(self) -> None:
        reply = self.client.request(TENANT, TICKET_QUERY, method="GET", query={"id": 7}, region=REGION)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body["item"]["method"], "GET")
        self.assertEqual(reply.body["item"]["query"], "id=7")
        self.assertIsNone(reply.body["item"]["body"])

    def test_request_survives_a_revoked_token(self) -> None:
        revoke_broker_token()
        reply = self.client.request(TENANT, TICKET_QUERY, body={})
        self.assertEqual(reply.ret_code, "000000", "the broker refreshed on 900002 and retried")

    def test_refused_paths_are_invalid_params(self) -> None:
        for path in ("/api/get_token", "/api/../api/get_token", "https://evil.example/api/x", "api/x"):
            with self.subTest(path=path):
                with self.assertRaises(InvalidParams) as raised:
                    self.client.request(TENANT, path)
                self.assertEqual(raised.exception.code, -32602)
                self.assertIsInstance(raised.exception, BrokerError)

    def test_unknown_tenant_and_region(self) -> None:
        with self.assertRaises(UnknownTenant) as raised:
            self.client.token("ghost")
        self.assertEqual(raised.exception.code, -32001)
        self.assertIn("-32001", str(raised.exception))
        with self.assertRaises(UnknownTenant):
            self.client.token(TENANT, region="us")
        with self.assertRaises(BrokerError) as raised:
            self.client.request("ghost", TICKET_QUERY)
        self.assertEqual(raised.exception.code, -32001)

    def test_a_refused_credential_keeps_the_code_and_sobots_ret_code(self) -> None:
        with self.assertRaises(UpstreamRejected) as raised:
            self.client.token("refused", region=REGION)
        error = raised.exception
        self.assertEqual(error.code, -32003)
        self.assertEqual((error.ret_code, error.ret_msg), ("900003", "signature error"))
        self.assertIn("-32003", str(error))
        self.assertNotIn("not-the-key", str(error) + repr(error))

    def test_invalid_params(self) -> None:
        with self.assertRaises(InvalidParams):
            self.client.call("token.get", {"tenant": TENANT, "colour": "blue"})
        with self.assertRaises(InvalidParams):
            self.client.token("Not A Tenant")
        with self.assertRaises(InvalidParams):
            self.client.request(TENANT, TICKET_QUERY, method="DELETE")

    def test_errors_never_show_a_reported_token(self) -> None:
        secret = "f00dfeedsecrettoken0123456789ab"
        with self.assertRaises(UnknownTenant) as raised:
            self.client.invalidate("ghost", secret)
        for text in (str(raised.exception), repr(raised.exception), raised.exception.message):
            self.assertNotIn(secret, text)

    def test_method_not_found_and_generic_call(self) -> None:
        with self.assertRaises(BrokerError) as raised:
            self.client.call("no.such.method")
        self.assertEqual(raised.exception.code, -32601)
        tenants = self.client.call("tenant.list")["tenants"]
        self.assertIn(TENANT, [tenant["id"] for tenant in tenants])
        self.assertEqual(self.client.tenants(), tenants)
        names = [module["name"] for module in self.client.modules()]
        self.assertIn("sobot", names)

    def test_missing_socket_is_broker_unavailable(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            client = BrokerClient(os.path.join(directory, "nothing.sock"), timeout=2)
            with self.assertRaises(BrokerUnavailable) as raised:
                client.health()
        message = str(raised.exception)
        self.assertIn("nothing.sock", message)
        self.assertNotIn("\n", message)
        self.assertIsNone(raised.exception.code)
        self.assertIsNone(raised.exception.__cause__)

    def test_concurrent_calls_from_threads(self) -> None:
        client = BrokerClient(SOCKET, timeout=20, max_idle=2)
        self.addCleanup(client.close)
        expected = client.token(TENANT).token
        errors: List[BaseException] = []
        tokens: List[str] = []
        lock = threading.Lock()

        def work() -> None:
            try:
                for index in range(25):
                    if index % 5 == 4:
                        reply = client.request(TENANT, TICKET_QUERY, body={"n": index})
                        assert reply.body["item"]["body"] == {"n": index}
                    else:
                        token = client.token(TENANT).token
                        with lock:
                            tokens.append(token)
            except BaseException as error:  # reported below
                with lock:
                    errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(tokens), 8 * 20)
        self.assertEqual(set(tokens), {expected})
        self.assertLessEqual(len(client._idle), 2)

    def test_one_connection_per_call(self) -> None:
        with BrokerClient(SOCKET, max_idle=0) as client:
            for _ in range(3):
                self.assertEqual(client.health()["status"], "ok")
            self.assertEqual(client._idle, [])


class FakeServer:
    """A Unix socket server whose handler gets each accepted connection, for misbehaviour a real
    daemon never shows."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.directory.name, "fake.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.handler = handler
        self.stopping = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            worker = threading.Thread(target=self._handle, args=(connection,), daemon=True)
            worker.start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                self.handler(connection)
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()
        self.directory.cleanup()


def read_request(connection: socket.socket) -> Optional[Dict[str, Any]]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def answer(connection: socket.socket, request: Dict[str, Any], result: Any) -> None:
    reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
    connection.sendall(json.dumps(reply).encode() + b"\n")


class ProtocolRobustnessTests(unittest.TestCase):
    def serve(self, handler: Callable[[socket.socket], None]) -> FakeServer:
        server = FakeServer(handler)
        self.addCleanup(server.close)
        return server

    def client(self, server: FakeServer, **options: Any) -> BrokerClient:
        client = BrokerClient(server.path, **{"timeout": 2.0, **options})
        self.addCleanup(client.close)
        return client

    def test_a_line_that_is_not_json(self) -> None:
        def handler(connection: socket.socket) -> None:
            read_request(connection)
            connection.sendall(b"<html>hello</html>\n")
            time.sleep(1)

        started = time.monotonic()
        with self.assertRaises(BrokerProtocolError) as raised:
            self.client(self.serve(handler)).health()
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertIn("not JSON", str(raised.exception))

    def test_silence_times_out(self) -> None:
        def handler(connection: socket.socket) -> None:
            read_request(connection)
            connection.sendall(b'{"jsonrpc":"2.0","id":1,')  # and never the rest
            time.sleep(3)

        started = time.monotonic()
        with self.assertRaises(BrokerUnavailable) as raised:
            self.client(self.serve(handler), timeout=0.5).health()
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIn("timed out", str(raised.exception))

    def test_a_reply_over_the_limit(self) -> None:
        def handler(connection: socket.socket) -> None:
            read_request(connection)
            chunk = b" " * 65536
            try:
                for _ in range(300):  # 18.75 MiB, no newline
                    connection.sendall(chunk)
            except OSError:
                pass  # the client hung up, as it should

        with self.assertRaises(BrokerProtocolError) as raised:
            self.client(self.serve(handler), timeout=10).health()
        self.assertIn(str(16 << 20), str(raised.exception))

    def test_a_smaller_reply_limit(self) -> None:
        def handler(connection: socket.socket) -> None:
            request = read_request(connection)
            assert request is not None
            answer(connection, request, {"blob": "x" * 5000})

        with self.assertRaises(BrokerProtocolError):
            self.client(self.serve(handler), max_reply_bytes=4096).call("x.y")

    def test_closed_without_a_reply(self) -> None:
        def handler(connection: socket.socket) -> None:
            read_request(connection)

        with self.assertRaises(BrokerUnavailable) as raised:
            self.client(self.serve(handler)).health()
        self.assertIn("closed the connection", str(raised.exception))

    def test_a_reply_for_another_id(self) -> None:
        def handler(connection: socket.socket) -> None:
            request = read_request(connection)
            assert request is not None
            answer(connection, {"id": request["id"] + 100}, {"status": "ok"})

        with self.assertRaises(BrokerProtocolError):
            self.client(self.serve(handler)).health()

    def test_error_replies_map_to_classes(self) -> None:
        codes = {-32002: PermissionDenied, -32003: UpstreamRejected, -32099: BrokerError}

        def handler(connection: socket.socket) -> None:
            while True:
                request = read_request(connection)
                if request is None:
                    return
                code = request["params"]["code"]
                error = {"code": code, "message": "no\nway", "data": {"ret_code": "900003", "ret_msg": "signature error"}}
                connection.sendall(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode() + b"\n")

        client = self.client(self.serve(handler))
        for code, cls in codes.items():
            with self.subTest(code=code):
                with self.assertRaises(cls) as raised:
                    client.call("x.y", {"code": code})
                self.assertIs(type(raised.exception), cls)
                self.assertEqual(raised.exception.code, code)
                self.assertEqual(raised.exception.message, "no way", "one line")
        with self.assertRaises(UpstreamRejected) as raised:
            client.call("x.y", {"code": -32003})
        self.assertEqual((raised.exception.ret_code, raised.exception.ret_msg), ("900003", "signature error"))
        self.assertEqual(len(client._idle), 1, "an error reply leaves the connection usable")

    def test_connections_are_reused_and_a_closed_idle_one_is_replaced(self) -> None:
        def handler(connection: socket.socket) -> None:
            request = read_request(connection)  # one request per connection, then close
            if request is not None:
                answer(connection, request, {"status": "ok"})

        server = self.serve(handler)
        client = self.client(server)
        self.assertEqual(client.health(), {"status": "ok"})
        time.sleep(0.2)  # the server has closed it by now
        self.assertEqual(client.health(), {"status": "ok"})
        self.assertEqual(server.connections, 2)

        def keep_open(connection: socket.socket) -> None:
            while True:
                request = read_request(connection)
                if request is None:
                    return
                answer(connection, request, {"status": "ok"})

        server = self.serve(keep_open)
        client = self.client(server)
        for _ in range(5):
            client.health()
        self.assertEqual(server.connections, 1)

    def test_a_connection_closed_as_the_request_arrives(self) -> None:
        # The race an idle timeout allows: the daemon closes a reused connection without reading
        # the request. Safe methods go again on a new connection; sobot.request never goes twice.
        def handler(connection: socket.socket) -> None:
            request = read_request(connection)
            if request is not None:
                answer(connection, request, {"status": "ok"})
            read_request(connection)  # then drop the next request unanswered

        server = self.serve(handler)
        client = self.client(server)
        client.health()
        self.assertEqual(client.health(), {"status": "ok"})
        self.assertEqual(server.connections, 2)
        with self.assertRaises(BrokerUnavailable):
            client.call("sobot.request", {"tenant": "acme", "path": "/api/x"})
        self.assertEqual(server.connections, 2, "sobot.request was not sent again")

    def test_a_request_over_one_mib_is_refused_before_sending(self) -> None:
        server = self.serve(lambda connection: None)
        with self.assertRaises(InvalidRequest):
            self.client(server).request("acme", "/api/x", body={"blob": "x" * (1 << 20)})

    def test_unserialisable_params_do_not_show_their_values(self) -> None:
        server = self.serve(lambda connection: None)
        with self.assertRaises(TypeError) as raised:
            self.client(server).call("token.invalidate", {"tenant": "acme", "token": "s3cr3t", "x": object()})
        self.assertNotIn("s3cr3t", str(raised.exception))

    def test_timeout_connecting_to_a_full_backlog_is_bounded(self) -> None:
        # A listener that never accepts: connect() may succeed (backlog) but no reply ever comes.
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        path = os.path.join(directory.name, "deaf.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(path)
        listener.listen(1)
        started = time.monotonic()
        with self.assertRaises(BrokerUnavailable):
            BrokerClient(path, timeout=0.5, max_idle=0).health()
        self.assertLess(time.monotonic() - started, 2.0)


class HelperTests(unittest.TestCase):
    def test_is_token_expired(self) -> None:
        self.assertTrue(is_token_expired({"ret_code": "900002", "ret_msg": "token expired"}))
        self.assertTrue(is_token_expired({"ret_code": 900002}))
        self.assertTrue(is_token_expired(Reply(status=200, body={"ret_code": "900002"})))
        self.assertFalse(is_token_expired({"ret_code": "000000"}))
        self.assertFalse(is_token_expired({"ret_code": "900001"}))
        self.assertFalse(is_token_expired({}))
        self.assertFalse(is_token_expired(None))
        self.assertFalse(is_token_expired("900002"))

    def test_default_socket_path(self) -> None:
        self.assertEqual(default_socket_path({"SOBOT_BROKER_SOCKET": "/s.sock", "SOBOT_BROKER_HOME": "/h"}), "/s.sock")
        self.assertEqual(default_socket_path({"SOBOT_BROKER_HOME": "/h", "XDG_STATE_HOME": "/x"}), "/h/broker.sock")
        self.assertEqual(default_socket_path({"XDG_STATE_HOME": "/x", "HOME": "/u"}), "/x/sobot-broker/broker.sock")
        self.assertEqual(default_socket_path({"XDG_STATE_HOME": "", "HOME": "/u"}), "/u/.local/state/sobot-broker/broker.sock")
        self.assertEqual(default_socket_path({"HOME": "/u"}), "/u/.local/state/sobot-broker/broker.sock")

    def test_token_from_a_bad_result_never_shows_the_token(self) -> None:
        with self.assertRaises(BrokerProtocolError) as raised:
            Token.from_result({"token": "s3cr3t", "tenant": "acme"})
        self.assertNotIn("s3cr3t", str(raised.exception))
        self.assertNotIn("s3cr3t", repr(raised.exception))

    def test_broker_error_shape(self) -> None:
        error = UnknownTenant('unknown tenant "ghost"')
        self.assertEqual(error.code, -32001)
        self.assertEqual(str(error), '[-32001] unknown tenant "ghost"')
        self.assertIn("UnknownTenant", repr(error))
        self.assertIsNone(BrokerUnavailable("x").code)


if __name__ == "__main__":
    unittest.main()

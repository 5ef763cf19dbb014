"""The WASI component embedded by a real WASI runtime (Wasmtime, via its Python embedding),
calling the mock provider over wasi:http: the failover scenarios of the JS hosts."""

import json

from wasmtime.component import Variant

from conftest import config, field


def is_err(value, tag=None):
    return isinstance(value, Variant) and (tag is None or value.tag == tag)


def create(host, cfg):
    pool = host.call("[static]pool.create", cfg)
    assert not is_err(pool), pool
    return pool


def status(host, pool):
    return host.call("[method]pool.status", pool)


def test_exports_are_the_client_interface(host):
    exports = sorted(name for name, _ in host.component.type.exports(host.store.engine)) if hasattr(host.component.type, "exports") else None
    assert host.iface is not None
    for name in ["[static]pool.create", "[method]pool.request", "[method]pool.get", "[method]pool.post", "[method]pool.status", "[method]pool.add-key", "[method]pool.remove-key"]:
        assert host.instance.get_export_index(host.store, name, host.iface) is not None, name
    del exports


def test_round_robin_rotates(host, mock, keys):
    ks, run = keys({"a": {}, "b": {}, "c": {}})
    pool = create(host, config(mock.url, ks, strategy="round-robin"))
    for _ in range(4):
        r = host.call("[method]pool.get", pool, "/v1/models", [])
        assert not is_err(r), r
        assert field(r, "status") == 200
    assert mock.calls(run) == ["a", "b", "c", "a"]


def test_quota_failover_and_status(host, mock, keys):
    ks, run = keys({"a": {"script": ["quota"]}, "b": {}})
    pool = create(host, config(mock.url, ks, strategy="round-robin", cooldown_seconds=600))
    body = json.dumps({"model": "m", "messages": []}).encode()
    r = host.call("[method]pool.post", pool, "/v1/chat/completions", [("content-type", "application/json")], list(body))
    assert not is_err(r), r
    assert (field(r, "key_id"), field(r, "attempts")) == ("b", 2)
    assert json.loads(bytes(field(r, "body")))["choices"][0]["message"]["content"] == f"served by {run}b"
    s = status(host, pool)
    a = field(s, "keys")[0]
    assert (field(a, "state"), field(a, "failover_count"), field(a, "last_error")) == ("exhausted", 1, "quota_exhausted")
    assert field(a, "cooldown_until") > field(a, "last_used_at") + 590_000
    host.call("[method]pool.get", pool, "/v1/models", [])
    assert mock.calls(run) == ["a", "b", "b"]


def test_invalid_key_is_quarantined(host, mock, keys):
    ks, run = keys({"a": {"script": ["invalid"]}, "b": {}})
    pool = create(host, config(mock.url, ks, strategy="round-robin"))
    for _ in range(3):
        assert field(host.call("[method]pool.get", pool, "/v1/models", []), "key_id") == "b"
    assert mock.calls(run) == ["a", "b", "b", "b"]
    assert field(field(status(host, pool), "keys")[0], "state") == "invalid"


def test_retry_after_is_waited_out_with_one_key(host, mock, keys):
    ks, run = keys({"a": {"script": ["rate_limit:300"]}})
    pool = create(host, config(mock.url, ks))
    r = host.call("[method]pool.get", pool, "/v1/models", [])
    assert not is_err(r), r
    assert field(r, "attempts") == 2
    assert mock.calls(run) == ["a", "a"]


def test_upstream_errors_and_exhausted_pool(host, mock, keys):
    ks, run = keys({"a": {"script": ["bad_request", "quota"]}, "b": {"script": ["quota"]}})
    pool = create(host, config(mock.url, ks, strategy="round-robin", cooldown_seconds=600))
    e = host.call("[method]pool.get", pool, "/v1/models", [])
    assert is_err(e, "upstream")
    assert (field(e.payload, "status"), field(e.payload, "outcome"), field(e.payload, "attempts")) == (400, "client-error", 1)
    assert "required property" in bytes(field(e.payload, "body")).decode()
    e = host.call("[method]pool.get", pool, "/v1/models", [])
    assert is_err(e, "upstream") and field(e.payload, "outcome") == "quota-exhausted"
    retry_at = field(e.payload, "retry_at_ms")
    assert retry_at is not None
    e = host.call("[method]pool.get", pool, "/v1/models", [])
    assert is_err(e, "no-healthy-keys") and e.payload == retry_at
    assert len(mock.calls(run)) == 3


def test_bad_config_names_the_field(host, mock, keys):
    ks, _ = keys({"a": {}})
    for cfg, name in [
        (config(mock.url, []), "keys"),
        (config("ftp://example.com", ks), "upstream_base_url"),
        (config(mock.url, ks + ks), "keys[1].id"),
        (config(mock.url, ks, retry_attempts=1000), "retry_attempts"),
    ]:
        e = host.call("[static]pool.create", cfg)
        assert is_err(e, "invalid-config"), e
        assert field(e.payload, "field") == name
        assert "secret" not in field(e.payload, "problem")


def test_origin_pinning(host, mock, keys):
    ks, run = keys({"a": {}})
    pool = create(host, config(mock.url, ks))
    for path in ["https://evil.example.net/v1", "//evil.example.net/x", "/v1/../../x"]:
        e = host.call("[method]pool.get", pool, path, [])
        assert is_err(e, "invalid-request"), path
    assert mock.calls(run) == []


def test_request_carries_headers_query_and_body(host, mock, keys):
    ks, run = keys({"a": {}})
    pool = create(host, config(mock.url, ks, auth_header_name="x-api-key", auth_scheme="", default_headers=[("anthropic-version", "2023-06-01")]))
    req = type(ks[0])()
    for k, v in {"method": "PUT", "path": "/v1/echo", "query": [("beta", "1")], "headers": [("x-trace", "t")], "body": list(b"hello"), "timeout-ms": 5000}.items():
        setattr(req, k, v)
    r = host.call("[method]pool.request", pool, req)
    assert not is_err(r), r
    echo = json.loads(bytes(field(r, "body")))
    assert (echo["method"], echo["body"], echo["query"], echo["headers"]["x-trace"], echo["headers"]["anthropic-version"]) == ("PUT", "hello", {"beta": "1"}, "t", "2023-06-01")


def test_no_key_value_in_status_or_state(host, mock, keys):
    ks, _ = keys({"a": {"script": ["invalid"]}, "b": {}})
    pool = create(host, config(mock.url, ks))
    host.call("[method]pool.get", pool, "/v1/models", [])
    text = repr(vars(status(host, pool))) + repr([vars(k) for k in field(status(host, pool), "keys")]) + host.call("[method]pool.export-state", pool)
    for k in ks:
        assert field(k, "value") not in text


def test_state_exports_and_imports(host, mock, keys):
    ks, run = keys({"a": {"script": ["quota"]}, "b": {}})
    first = create(host, config(mock.url, ks, strategy="round-robin"))
    host.call("[method]pool.get", first, "/v1/models", [])
    state = host.call("[method]pool.export-state", first)
    second = create(host, config(mock.url, ks, strategy="round-robin"))
    assert host.call("[method]pool.import-state", second, state) is None
    host.call("[method]pool.get", second, "/v1/models", [])
    assert mock.calls(run) == ["a", "b", "b"], "the second pool knew a was exhausted"
    assert is_err(host.call("[method]pool.import-state", second, "{not json"), "invalid-config")

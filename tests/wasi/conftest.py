"""Fixtures: the mock provider in its own process, and a Wasmtime host embedding the component."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import wasmtime
import wasmtime.component as cm

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "target" / "components" / "poolswitch.wasm"
INTERFACE = "poolswitch:client/client@0.1.0"


def record(**fields):
    """A WIT record value: Wasmtime reads fields by their kebab-case names."""
    r = SimpleNamespace()
    for k, v in fields.items():
        setattr(r, k.replace("_", "-"), v)
    return r


def field(rec, name):
    return getattr(rec, name.replace("_", "-"))


class Mock:
    def __init__(self):
        self.proc = subprocess.Popen(["node", str(ROOT / "js" / "mock-provider.js"), "--port", "0"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("READY "), line
        self.url = line.split()[1]

    def set_keys(self, specs):
        req = urllib.request.Request(f"{self.url}/__mock/keys", data=json.dumps(specs).encode(), headers={"content-type": "application/json"})
        urllib.request.urlopen(req).read()

    def calls(self, prefix):
        calls = json.load(urllib.request.urlopen(f"{self.url}/__mock/calls"))
        return [c["keyId"][len(prefix) :] for c in calls if c["keyId"] and c["keyId"].startswith(prefix)]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mock():
    m = Mock()
    yield m
    m.stop()


class Host:
    """One Wasmtime store with the component instantiated over wasi:cli and wasi:http."""

    def __init__(self):
        assert COMPONENT.exists(), f"build the component first: {COMPONENT}"
        engine = wasmtime.Engine()
        self.component = cm.Component.from_file(engine, str(COMPONENT))
        linker = cm.Linker(engine)
        linker.add_wasip2()
        linker.add_wasi_http()
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_wasi_http()
        self.instance = linker.instantiate(self.store, self.component)
        self.iface = self.instance.get_export_index(self.store, INTERFACE)

    def call(self, name, *args):
        index = self.instance.get_export_index(self.store, name, self.iface)
        assert index is not None, f"export {name} missing"
        func = self.instance.get_func(self.store, index)
        out = func(self.store, *args)
        func.post_return(self.store)
        return out


@pytest.fixture
def host():
    return Host()


_counter = [0]


@pytest.fixture
def keys(mock):
    """Registers fresh keys with the mock: keys({"a": {...}}) -> (key-config list, prefix)."""

    def make(specs):
        _counter[0] += 1
        run = f"py{os.getpid()}x{_counter[0]}-"
        registered = {}
        configs = []
        for kid, spec in specs.items():
            value = f"sk-{run}{kid}-secret"
            registered[value] = {**spec, "id": f"{run}{kid}"}
            configs.append(record(id=kid, value=value, monthly_quota=None, weight=None, metadata_json=None))
        mock.set_keys(registered)
        return configs, run

    return make


def config(base_url, keys, **over):
    fields = dict(
        upstream_base_url=base_url,
        keys=keys,
        strategy=None,
        retry_attempts=None,
        cooldown_seconds=None,
        auth_header_name=None,
        auth_scheme=None,
        query_auth_param=None,
        request_timeout_ms=None,
        rate_limit_per_second=None,
        retryable_methods=None,
        default_headers=[],
        backoff_base_ms=None,
        backoff_max_ms=None,
        max_wait_ms=None,
    )
    fields.update(over)
    return record(**fields)

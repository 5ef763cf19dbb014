"""A WASI host for the poolswitch component: Wasmtime embedded in Python (PyPI `wasmtime`, a prebuilt
runtime with component-model and wasi:http support, pinned in tests/wasi/requirements.txt).

Usage: python python_host.py COMPONENT.wasm

Instantiates the component with wasi:cli and wasi:http and serves the exports of
poolswitch:client/client over JSON lines on stdin/stdout, so the Node test runner can drive the
component through this host (tests/wasi/wit-host.js):

    {"call": "[method]pool.get", "args": [{"$resource": 1}, "/v1/models", []]}
    -> {"ok": value} | {"err": value} | {"trap": "message"}

Values follow jco's conventions, so one mapping serves both hosts: records are objects with
camelCase keys, variants {"tag", "val"}, enums strings, tuples arrays, `none` null; list<u8> is
{"$bytes": base64} and a resource {"$resource": n}. Conversion follows the function's WIT types.
"""

import base64
import json
import sys

import wasmtime
import wasmtime.component as cm

INTERFACE = "poolswitch:client/client@0.1.0"


def camel(name):
    head, *rest = name.split("-")
    return head + "".join(part.capitalize() for part in rest)


class Host:
    def __init__(self, path):
        engine = wasmtime.Engine()
        component = cm.Component.from_file(engine, path)
        linker = cm.Linker(engine)
        linker.add_wasip2()
        linker.add_wasi_http()
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_wasi_http()
        self.instance = linker.instantiate(self.store, component)
        self.interface = self.instance.get_export_index(self.store, INTERFACE)
        if self.interface is None:
            raise SystemExit(f"{path} does not export {INTERFACE}")
        self.resources = {}

    # --- JSON -> Python values, as wasmtime-py expects them --------------------------------------
    def lower(self, ty, v):
        if isinstance(ty, cm.RecordType):
            record = cm.Record()
            for name, field_ty in ty.fields:
                setattr(record, name, self.lower(field_ty, v.get(camel(name))))
            return record
        if isinstance(ty, cm.ListType):
            if isinstance(ty.element, cm.U8):
                return base64.b64decode(v["$bytes"])
            return [self.lower(ty.element, x) for x in v]
        if isinstance(ty, cm.TupleType):
            return tuple(self.lower(t, x) for t, x in zip(ty.elements, v))
        if isinstance(ty, cm.OptionType):
            return None if v is None else self.lower(ty.payload, v)
        if isinstance(ty, cm.VariantType):
            payload = dict(ty.cases)[v["tag"]]
            return cm.Variant(v["tag"], None if payload is None else self.lower(payload, v.get("val")))
        if isinstance(ty, (cm.OwnType, cm.BorrowType)):
            return self.resources[v["$resource"]]
        return v  # numbers, strings, bools, enums

    # --- Python values -> JSON -------------------------------------------------------------------
    def lift(self, ty, v):
        if isinstance(ty, cm.RecordType):
            return {camel(name): self.lift(field_ty, getattr(v, name)) for name, field_ty in ty.fields}
        if isinstance(ty, cm.ListType):
            if isinstance(ty.element, cm.U8):
                return {"$bytes": base64.b64encode(v).decode()}
            return [self.lift(ty.element, x) for x in v]
        if isinstance(ty, cm.TupleType):
            return [self.lift(t, x) for t, x in zip(ty.elements, v)]
        if isinstance(ty, cm.OptionType):
            return None if v is None else self.lift(ty.payload, v)
        if isinstance(ty, cm.VariantType):
            payload = dict(ty.cases)[v.tag]
            return {"tag": v.tag, "val": None if payload is None else self.lift(payload, v.payload)}
        if isinstance(ty, (cm.OwnType, cm.BorrowType)):
            handle = len(self.resources) + 1
            self.resources[handle] = v
            return {"$resource": handle}
        return v

    def result(self, ty, v):
        """A function's result: {"ok": ...} or {"err": ...} (a WIT `result` says which)."""
        if not isinstance(ty, cm.ResultType):
            return {"ok": None if ty is None else self.lift(ty, v)}
        # wasmtime-py tags a result's cases only when their Python types would overlap.
        if ty._tagged():
            tag, payload = v.tag, v.payload
        else:
            err_classes = set()
            if ty.err is not None:
                ty.err.add_classes(err_classes)
            tag, payload = ("err", v) if err_classes and isinstance(v, tuple(err_classes)) else ("ok", v)
        case_ty = ty.ok if tag == "ok" else ty.err
        return {tag: None if case_ty is None else self.lift(case_ty, payload)}

    def call(self, name, args):
        index = self.instance.get_export_index(self.store, name, self.interface)
        if index is None:
            raise ValueError(f"no export {name} in {INTERFACE}")
        func = self.instance.get_func(self.store, index)
        ty = func.type(self.store)
        values = [self.lower(param_ty, arg) for (_, param_ty), arg in zip(ty.params, args)]
        out = func(self.store, *values)
        func.post_return(self.store)
        return self.result(ty.result, out)


def main():
    host = Host(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = host.call(request["call"], request.get("args", []))
        except (wasmtime.WasmtimeError, wasmtime.Trap, ValueError, TypeError, KeyError) as e:
            reply = {"trap": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()

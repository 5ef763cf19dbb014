//! One key schema: every field of the core's `KeyStatus`, as it serializes, must be in the WIT
//! `key-status` record (kebab-case) and in index.d.ts's `KeyStatus` interface (camelCase), and
//! neither may have a field the core lacks. (The WIT mapping in src/component/exports.rs is a struct
//! literal of the generated record, so the compiler holds it to the WIT.) README: "Adding a field
//! to key status".

mod support;

use std::collections::BTreeSet;

use support::{client, config, ok, ScriptedTransport, VirtualTime};

/// Core fields whose WIT counterpart has another name: the WIT has no JSON type.
const WIT_RENAMES: &[(&str, &str)] = &[("metadata", "metadata-json")];

fn core_fields() -> BTreeSet<String> {
    let time = VirtualTime::new();
    let keys = [("a", "sk-aaa-secret")];
    let transport = ScriptedTransport::new(&time, &keys, |_, _| ok("{}"));
    let status = client(&config(&keys), &transport, &time).status();
    let key = serde_json::to_value(&status.keys[0]).expect("a key status serializes");
    key.as_object().expect("a key status is an object").keys().cloned().collect()
}

/// The field names of the block that starts with `header` and ends at the next line `}`.
fn block_fields(text: &str, header: &str, what: &str) -> BTreeSet<String> {
    let start = text.find(header).unwrap_or_else(|| panic!("{what}: `{header}` not found"));
    text[start + header.len()..]
        .lines()
        .map(str::trim)
        .take_while(|line| *line != "}")
        .filter(|line| !line.is_empty() && !line.starts_with("//") && !line.starts_with("/*") && !line.starts_with('*'))
        .map(|line| line.split(':').next().unwrap_or_default().trim_end_matches('?').trim().to_owned())
        .collect()
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn wit_key_status_has_every_core_field_and_no_other() {
    let wit = block_fields(&read("wit/poolswitch.wit"), "record key-status {", "wit/poolswitch.wit");
    let expected: BTreeSet<String> = core_fields()
        .iter()
        .map(|f| WIT_RENAMES.iter().find(|(core, _)| core == f).map_or_else(|| kebab(f), |(_, wit)| (*wit).to_owned()))
        .collect();
    let missing: Vec<_> = expected.difference(&wit).collect();
    let extra: Vec<_> = wit.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "wit/poolswitch.wit key-status: missing {missing:?}, not in the core {extra:?}");
}

#[test]
fn index_d_ts_key_status_has_every_core_field_and_no_other() {
    let ts = block_fields(&read("js/index.d.ts"), "export interface KeyStatus {", "js/index.d.ts");
    let core = core_fields();
    let missing: Vec<_> = core.difference(&ts).collect();
    let extra: Vec<_> = ts.difference(&core).collect();
    assert!(missing.is_empty() && extra.is_empty(), "js/index.d.ts KeyStatus: missing {missing:?}, not in the core {extra:?}");
}

// One config schema: every field of the core's `PoolConfig` is in the WIT `config` record and
// in index.d.ts's `PoolSwitchOptions`, by the names each side uses.

/// Options only the JS wrapper reads (the host's fetch, listeners, the store); not core config.
const JS_ONLY_OPTIONS: &[&str] =
    &["fetch", "dispatcher", "onEvent", "logger", "logLevel", "dangerouslyAllowBrowser", "store", "namespace", "storeOptions"];

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn wit_config_has_every_core_field_and_no_other() {
    let wit = block_fields(&read("wit/poolswitch.wit"), "record config {", "wit/poolswitch.wit");
    let expected: BTreeSet<String> = poolswitch::core::PoolConfig::field_names().iter().map(|f| f.replace('_', "-")).collect();
    let missing: Vec<_> = expected.difference(&wit).collect();
    let extra: Vec<_> = wit.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "wit/poolswitch.wit config: missing {missing:?}, not in the core {extra:?}");
}

#[test]
fn index_d_ts_options_have_every_core_field_and_only_known_js_options() {
    let ts = block_fields(&read("js/index.d.ts"), "export interface PoolSwitchOptions {", "js/index.d.ts");
    let core: BTreeSet<String> = poolswitch::core::PoolConfig::field_names().iter().map(|f| camel(f)).collect();
    let missing: Vec<_> = core.difference(&ts).collect();
    let extra: Vec<_> = ts.difference(&core).filter(|f| !JS_ONLY_OPTIONS.contains(&f.as_str())).collect();
    assert!(missing.is_empty() && extra.is_empty(), "js/index.d.ts PoolSwitchOptions: missing {missing:?}, unknown to the core {extra:?}");
}

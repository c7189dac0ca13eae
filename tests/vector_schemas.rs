//! Checks every test vector file against its JSON Schema in
//! `test-vectors/schema/`, with a small validator for the subset of JSON
//! Schema (draft 2020-12) that those schemas use: `type`, `properties`,
//! `required`, `additionalProperties: false`, `pattern` (only the hex
//! pattern `^[0-9a-f]*$`), `minLength`/`maxLength`, `items`,
//! `minItems`/`maxItems`, `oneOf`, `enum`, `minimum`/`maximum`. Any other
//! keyword makes the test fail, so the schemas cannot drift outside the
//! subset unnoticed. No JSON Schema crate is used.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The vector files, without `.json`.
const FILES: [&str; 8] = [
    "padding",
    "tokens",
    "hub-configuration",
    "envelopes",
    "key-layer",
    "fanout",
    "negative",
    "disputes",
];

/// The only pattern the schemas use.
const HEX_PATTERN: &str = "^[0-9a-f]*$";

/// Keywords that carry no constraint.
const ANNOTATIONS: [&str; 4] = ["$schema", "$id", "title", "description"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema(name: &str) -> Value {
    load(&dir().join("schema").join(format!("{name}.schema.json")))
}

fn vectors(name: &str) -> Value {
    load(&dir().join(format!("{name}.json")))
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn as_usize(v: &Value) -> usize {
    v.as_u64().expect("a non-negative integer") as usize
}

/// Validates `v` against schema `s`; the error names the path of the first
/// violation.
fn validate(s: &Value, v: &Value, path: &str) -> Result<(), String> {
    let s = s
        .as_object()
        .unwrap_or_else(|| panic!("{path}: schema not an object"));
    let fail = |what: &str| Err(format!("{path}: {what}"));
    for (key, arg) in s {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "type" => {
                let ok = match arg {
                    Value::String(t) => type_matches(t, v),
                    Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
                    _ => panic!("{path}: bad type keyword"),
                };
                if !ok {
                    return fail(&format!("not of type {arg}"));
                }
            }
            "enum" => {
                if !arg.as_array().unwrap().contains(v) {
                    return fail(&format!("{v} not in enum"));
                }
            }
            "minimum" | "maximum" => {
                if v.is_number() {
                    let below = as_f64(v) < as_f64(arg);
                    let above = as_f64(v) > as_f64(arg);
                    if (key == "minimum" && below) || (key == "maximum" && above) {
                        return fail(&format!("{v} violates {key} {arg}"));
                    }
                }
            }
            "pattern" => {
                assert_eq!(
                    arg, HEX_PATTERN,
                    "{path}: only the hex pattern is supported"
                );
                if let Some(t) = v.as_str() {
                    if !t
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return fail("not lowercase hex");
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(t) = v.as_str() {
                    let n = t.chars().count();
                    let bound = as_usize(arg);
                    if (key == "minLength" && n < bound) || (key == "maxLength" && n > bound) {
                        return fail(&format!("length {n} violates {key} {bound}"));
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let Some(a) = v.as_array() {
                    let bound = as_usize(arg);
                    if (key == "minItems" && a.len() < bound)
                        || (key == "maxItems" && a.len() > bound)
                    {
                        return fail(&format!("{} items violate {key} {bound}", a.len()));
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, item) in a.iter().enumerate() {
                        validate(arg, item, &format!("{path}[{i}]"))?;
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in arg.as_array().unwrap() {
                        if !o.contains_key(r.as_str().unwrap()) {
                            return fail(&format!("missing required key {r}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(o) = v.as_object() {
                    for (k, sub) in arg.as_object().unwrap() {
                        if let Some(x) = o.get(k) {
                            validate(sub, x, &format!("{path}.{k}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                assert_eq!(arg, &json!(false), "{path}: only `false` is supported");
                if let Some(o) = v.as_object() {
                    let props = s.get("properties").and_then(Value::as_object);
                    if let Some(k) = o
                        .keys()
                        .find(|k| !props.is_some_and(|p| p.contains_key(*k)))
                    {
                        return fail(&format!("unexpected key {k}"));
                    }
                }
            }
            "oneOf" => {
                let matching = arg
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|alt| validate(alt, v, path).is_ok())
                    .count();
                if matching != 1 {
                    return fail(&format!("{matching} alternatives of oneOf match, not 1"));
                }
            }
            other => panic!("{path}: keyword {other} outside the supported subset"),
        }
    }
    Ok(())
}

#[test]
fn every_file_matches_its_schema() {
    for name in FILES {
        let s = schema(name);
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let v = vectors(name);
        validate(&s, &v, name).unwrap_or_else(|e| panic!("{e}"));
        assert!(!v.as_array().unwrap().is_empty(), "{name} is empty");
    }
}

/// Every property of every schema documents itself.
#[test]
fn every_key_is_described() {
    fn walk(s: &Value, path: &str) {
        match s {
            Value::Object(o) => {
                if let Some(Value::Object(props)) = o.get("properties") {
                    for (k, sub) in props {
                        let described = sub.get("description").and_then(Value::as_str);
                        assert!(described.is_some_and(|d| !d.is_empty()), "{path}.{k}");
                    }
                }
                for (k, sub) in o {
                    walk(sub, &format!("{path}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, path)),
            _ => {}
        }
    }
    for name in FILES {
        walk(&schema(name), name);
    }
}

/// A schema check that accepts everything proves nothing: mutated entries
/// of every file must be rejected.
#[test]
fn mutated_entries_are_rejected() {
    for name in FILES {
        let s = schema(name);
        let original = vectors(name);
        let entry = &original[0];
        let obj = entry.as_object().unwrap();
        let with = |e: Value| json!([e]);
        assert!(validate(&s, &with(entry.clone()), name).is_ok());

        // An extra key.
        let mut extra = entry.clone();
        extra["unexpected_key"] = json!(1);
        assert!(
            validate(&s, &with(extra), name).is_err(),
            "{name}: extra key"
        );

        // Each required key missing in turn.
        for k in obj.keys() {
            let mut missing = entry.clone();
            missing.as_object_mut().unwrap().remove(k);
            assert!(
                validate(&s, &with(missing), name).is_err(),
                "{name}: without {k}"
            );
        }

        // Each hex string made invalid: a non-hex digit, or uppercase.
        for (k, x) in obj {
            let Some(t) = x.as_str() else { continue };
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                continue;
            }
            let mut bad = vec![format!("g{}", &t[1..])];
            if t.bytes().any(|b| b.is_ascii_lowercase()) {
                bad.push(t.to_uppercase());
            }
            for b in bad {
                let mut m = entry.clone();
                m[k] = json!(b);
                assert!(validate(&s, &with(m), name).is_err(), "{name}: {k} = {b}");
            }
        }

        // A wrong type for each integer field.
        for (k, x) in obj {
            if x.is_u64() {
                let mut m = entry.clone();
                m[k] = json!(x.to_string());
                assert!(
                    validate(&s, &with(m), name).is_err(),
                    "{name}: {k} as string"
                );
            }
        }
    }
}

/// Fixed-length hex fields reject one byte more and one byte less.
#[test]
fn fixed_lengths_are_enforced() {
    let s = schema("envelopes");
    let e = vectors("envelopes")[0].clone();
    for k in ["token", "header", "info", "ikm_e", "membership_proof"] {
        let t = e[k].as_str().unwrap();
        for bad in [format!("{t}00"), t[2..].to_string()] {
            let mut m = e.clone();
            m[k] = json!(bad);
            assert!(validate(&s, &json!([m]), "envelopes").is_err(), "{k}");
        }
    }
}

/// `oneOf` accepts either form of a large-or-small field, and nothing else.
#[test]
fn one_of_forms() {
    let s = schema("envelopes");
    let entries = vectors("envelopes");
    let large = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message"].is_object())
        .expect("a large message")
        .clone();
    assert!(validate(&s, &json!([large.clone()]), "envelopes").is_ok());
    let mut both = large.clone();
    both["message"]["sha256"] = json!("00");
    assert!(validate(&s, &json!([both]), "envelopes").is_err());
    let mut small_length = large;
    small_length["message"]["length"] = json!(10);
    assert!(validate(&s, &json!([small_length]), "envelopes").is_err());
}

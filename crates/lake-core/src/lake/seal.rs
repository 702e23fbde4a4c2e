//! The manifest seal: SHA-256 over a canonical form of everything except `created_at` and the seal itself.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Fields left out of the seal: the wall clock of the export, and the seal.
const UNSEALED: [&str; 2] = ["created_at", "seal"];

/// Keys sorted at every level, no white space: the same content always gives the same bytes.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).expect("JSON values always serialise")
}

/// The seal of a manifest: lowercase hex SHA-256 of the canonical form without the unsealed fields.
pub fn compute_seal(manifest: &Value) -> String {
    let mut content = manifest.clone();
    if let Value::Object(map) = &mut content {
        for key in UNSEALED {
            map.remove(key);
        }
    }
    hex::encode(Sha256::digest(canonical_json(&content).as_bytes()))
}

/// Adds the `seal` field (`{"algorithm": "sha256", "value": ...}`) as the manifest's last field.
pub fn seal(manifest: &mut Value) {
    let value = compute_seal(manifest);
    if let Value::Object(map) = manifest {
        map.remove("seal");
        map.insert(
            "seal".to_owned(),
            serde_json::json!({ "algorithm": "sha256", "value": value }),
        );
    }
}

/// The seal recorded in a manifest, if any.
pub fn recorded_seal(manifest: &Value) -> Option<&str> {
    manifest.get("seal")?.get("value")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }

    #[test]
    fn seal_covers_everything_but_created_at() {
        let mut m = json!({"run_id": "r", "created_at": "2020-01-01T00:00:00Z", "rows": 5});
        seal(&mut m);
        let sealed = recorded_seal(&m).unwrap().to_owned();
        assert_eq!(compute_seal(&m), sealed);
        m["created_at"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(compute_seal(&m), sealed, "created_at is not sealed");
        m["rows"] = json!(6);
        assert_ne!(compute_seal(&m), sealed, "any other field is");
    }
}

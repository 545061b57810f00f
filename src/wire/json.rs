//! Reading fields out of ARM and IMDS JSON documents by JSON pointer.
//!
//! Azure documents are read leniently: a missing, mistyped or blank field is "not said", never an
//! error, because one odd field must not cost the whole reading.

use serde_json::Value;

/// The trimmed, non-empty string at `pointer`.
pub fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The strings of the array at `pointer`; other items are skipped.
pub fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blank_and_mistyped_fields_are_not_said() {
        let v = json!({"a": " x ", "b": "  ", "c": 3, "l": ["p", 1, "q"], "m": "p"});
        assert_eq!(text(&v, "/a").as_deref(), Some("x"));
        assert_eq!(text(&v, "/b"), None);
        assert_eq!(text(&v, "/c"), None);
        assert_eq!(text(&v, "/missing"), None);
        assert_eq!(strings(&v, "/l"), ["p", "q"]);
        assert!(strings(&v, "/m").is_empty());
    }
}

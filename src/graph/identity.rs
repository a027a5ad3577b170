//! Identity JSON as PowerShell users write it: an object with `CallId` in any case, or — for the
//! objects `Get-MgCommunicationCall` returns — only `Id`.

use serde_json::Value;

use crate::error::CoreError;

/// Identity documents larger than this are refused unread.
const MAX_IDENTITY_BYTES: usize = 64 * 1024;

pub fn call_id_from_identity_json(json: &str) -> Result<String, CoreError> {
    let refuse = |msg: String| Err(CoreError::invalid("InputObject", msg));
    if json.len() > MAX_IDENTITY_BYTES {
        return refuse(format!("The identity JSON is {} bytes; at most {MAX_IDENTITY_BYTES} are allowed.", json.len()));
    }
    let value: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => return refuse(format!("The identity is not valid JSON: {e}.")),
    };
    let Value::Object(map) = value else {
        return refuse("The identity JSON must be an object with a CallId property.".into());
    };
    let find = |key: &str| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
    match find("CallId").filter(|v| !v.is_null()).or_else(|| find("Id").filter(|v| !v.is_null())) {
        Some(Value::String(id)) => Ok(id.clone()),
        Some(other) => refuse(format!("InputObject.CallId must be a string, not {}.", json_type(other))),
        None => refuse("InputObject has null value for InputObject.CallId".into()),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_id_in_any_case_then_id() {
        assert_eq!(call_id_from_identity_json(r#"{"CallId":"a"}"#).unwrap(), "a");
        assert_eq!(call_id_from_identity_json(r#"{"callid":"b","UserId":"u"}"#).unwrap(), "b");
        assert_eq!(call_id_from_identity_json(r#"{"id":"c","state":"established"}"#).unwrap(), "c");
        assert_eq!(call_id_from_identity_json(r#"{"CallId":null,"Id":"d"}"#).unwrap(), "d");
        assert_eq!(call_id_from_identity_json(r#"{"CallId":"e","Id":"f"}"#).unwrap(), "e");
    }

    #[test]
    fn bad_identities_are_clear_errors() {
        let msg = |j: &str| call_id_from_identity_json(j).unwrap_err().to_string();
        assert_eq!(msg(r#"{"UserId":"u"}"#), "InputObject has null value for InputObject.CallId");
        assert!(msg(r#"{"CallId":5}"#).contains("must be a string, not a number"));
        assert!(msg(r#"{"CallId":{"x":1}}"#).contains("not an object"));
        assert!(msg("[1,2]").contains("must be an object"));
        assert!(msg("{not json").contains("not valid JSON"));
        assert!(msg(&format!(r#"{{"CallId":"{}"}}"#, "x".repeat(70_000))).contains("at most"));
    }
}

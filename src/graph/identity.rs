//! Which call a piped item names: the one identity rule of the library and the PowerShell module.
//!
//! - A string is the call id itself, unless its first non-blank character is `{` (a JSON identity:
//!   an object with `CallId` in any case, else `Id`, which must be a JSON string) or it is a JSON
//!   array (refused: its items are to be piped one at a time).
//! - An object or dictionary names the call by its `CallId` property, else `Id` (names in any
//!   case, as the host looks them up): the first that has a non-empty text value; a value without
//!   a text form (a collection, a nested object) is refused, never turned into a type name.
//! - A call id given as such (`-CallId`) is taken as it is.

use serde_json::Value;

use crate::error::CoreError;

/// Identity documents larger than this are refused unread.
const MAX_IDENTITY_BYTES: usize = 64 * 1024;

/// The message of an identity that names no call (Microsoft's words).
pub const MISSING_CALL_ID: &str = "InputObject has null value for InputObject.CallId";

/// The `parameter` of the error for an identity that names no call, so that hosts can tell it
/// from an invalid identity (`InputObject`): the PowerShell module's `InputObjectCallIdMissing`.
pub const MISSING_CALL_ID_PARAMETER: &str = "InputObject.CallId";

/// A piped item as the host sees it.
#[derive(Debug, Clone, Copy)]
pub enum PipedItem<'a> {
    /// A string piped as it is (a call id, or a JSON identity).
    Text(&'a str),
    /// A call id given as such: taken as it is.
    CallId(&'a str),
    /// An object's or a dictionary's `CallId` and `Id` values (`None`: absent or null).
    Properties { call_id: Option<PropertyValue<'a>>, id: Option<PropertyValue<'a>> },
}

/// A property value as the host gives it.
#[derive(Debug, Clone, Copy)]
pub enum PropertyValue<'a> {
    /// A string, or the text of a scalar (a number as invariant text).
    Text(&'a str),
    /// A value that has no text form; the text is its type's name (e.g. `Hashtable`).
    NotText(&'a str),
}

/// The call an item names. `verbatim`: the call id is the item's text itself (a plain string or a
/// `-CallId`), so a host need not be handed it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedItem {
    pub call_id: String,
    pub verbatim: bool,
}

/// Applies the identity rule to a piped item. Errors are `InvalidArgument` with parameter
/// `InputObject` (an invalid identity), [`MISSING_CALL_ID_PARAMETER`] (no call named); the call
/// id itself is checked when it is sent.
pub fn resolve_item(item: PipedItem<'_>) -> Result<ResolvedItem, CoreError> {
    match item {
        PipedItem::CallId(id) => Ok(ResolvedItem { call_id: id.to_owned(), verbatim: true }),
        PipedItem::Text(text) => {
            let trimmed = text.trim_start();
            if trimmed.starts_with('[') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                return Err(CoreError::invalid(
                    "InputObject",
                    "InputObject is a JSON array, not a JSON identity: pipe its items one at a time (ConvertFrom-Json unrolls them).",
                ));
            }
            if !trimmed.starts_with('{') {
                return Ok(ResolvedItem { call_id: text.to_owned(), verbatim: true });
            }
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
                return Err(CoreError::invalid(
                    "InputObject",
                    "InputObject is not a valid JSON identity: the text starts with '{' but is not valid JSON.",
                ));
            }
            let call_id = identity_json(text).map_err(|e| e.into_error(MISSING_CALL_ID_PARAMETER))?;
            Ok(ResolvedItem { call_id, verbatim: false })
        }
        PipedItem::Properties { call_id, id } => {
            for (name, value) in [("CallId", call_id), ("Id", id)] {
                match value {
                    None => continue,
                    Some(PropertyValue::NotText(type_name)) => {
                        return Err(CoreError::invalid("InputObject", format!("InputObject.{name} must be a string, not {type_name}.")))
                    }
                    Some(PropertyValue::Text("")) => continue,
                    Some(PropertyValue::Text(text)) => return Ok(ResolvedItem { call_id: text.to_owned(), verbatim: false }),
                }
            }
            Err(CoreError::invalid(MISSING_CALL_ID_PARAMETER, MISSING_CALL_ID))
        }
    }
}

/// The call id of an identity JSON object (as `mgka_keep_alive_by_identity` takes one): its
/// `CallId` key (any case), else `Id`, the first that is not null; it must be a JSON string.
pub fn call_id_from_identity_json(json: &str) -> Result<String, CoreError> {
    identity_json(json).map_err(|e| e.into_error("InputObject"))
}

enum IdentityError {
    Missing,
    Invalid(CoreError),
}

impl IdentityError {
    fn into_error(self, missing_parameter: &'static str) -> CoreError {
        match self {
            IdentityError::Missing => CoreError::invalid(missing_parameter, MISSING_CALL_ID),
            IdentityError::Invalid(error) => error,
        }
    }
}

fn identity_json(json: &str) -> Result<String, IdentityError> {
    let refuse = |msg: String| Err(IdentityError::Invalid(CoreError::invalid("InputObject", msg)));
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
        None => Err(IdentityError::Missing),
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

    fn parameter(result: Result<ResolvedItem, CoreError>) -> &'static str {
        match result {
            Err(CoreError::InvalidArgument { parameter, .. }) => parameter,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn piped_strings() {
        let text = |t: &str| resolve_item(PipedItem::Text(t));
        assert_eq!(text("abc").unwrap(), ResolvedItem { call_id: "abc".into(), verbatim: true });
        assert_eq!(text("[abc").unwrap().call_id, "[abc", "not JSON: a call id");
        assert_eq!(text(" x ").unwrap().call_id, " x ");
        assert_eq!(text(r#" {"Id":"y"}"#).unwrap(), ResolvedItem { call_id: "y".into(), verbatim: false });
        assert_eq!(parameter(text(r#"[{"CallId":"a"}]"#)), "InputObject");
        assert!(text("[1]").unwrap_err().to_string().contains("JSON array"));
        assert!(text("{\"callId\": ").unwrap_err().to_string().starts_with("InputObject is not a valid JSON identity"));
        assert_eq!(parameter(text(r#"{"CallId":42}"#)), "InputObject");
        assert_eq!(parameter(text(r#"{"CallId":null}"#)), MISSING_CALL_ID_PARAMETER);
        assert_eq!(parameter(text(r#"{"other":"x"}"#)), MISSING_CALL_ID_PARAMETER);
        assert_eq!(resolve_item(PipedItem::CallId("{x")).unwrap(), ResolvedItem { call_id: "{x".into(), verbatim: true });
    }

    #[test]
    fn object_properties() {
        use PropertyValue::{NotText, Text};
        let props = |call_id, id| resolve_item(PipedItem::Properties { call_id, id });
        assert_eq!(props(Some(Text("a")), Some(Text("b"))).unwrap().call_id, "a");
        assert_eq!(props(Some(Text("")), Some(Text("b"))).unwrap().call_id, "b", "an empty CallId falls back to Id");
        assert_eq!(props(None, Some(Text("{b"))).unwrap().call_id, "{b", "a property is never JSON");
        assert_eq!(props(None, None).unwrap_err().to_string(), MISSING_CALL_ID);
        assert_eq!(parameter(props(None, None)), MISSING_CALL_ID_PARAMETER);
        assert_eq!(props(Some(NotText("Hashtable")), Some(Text("b"))).unwrap_err().to_string(), "InputObject.CallId must be a string, not Hashtable.");
        assert_eq!(props(None, Some(NotText("Object[]"))).unwrap_err().to_string(), "InputObject.Id must be a string, not Object[].");
    }
}

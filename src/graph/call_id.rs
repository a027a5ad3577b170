//! Call ids are opaque strings: each becomes exactly one percent-encoded path segment that decodes
//! back to exactly the id given, or is refused before anything is sent.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::ApiVersion;
use crate::error::CoreError;

/// Longer ids are refused: no real call id comes near this, and a URL must stay sane.
pub const MAX_CALL_ID_BYTES: usize = 1024;

/// Everything but RFC 3986 unreserved characters is encoded, so `/ ? # % ;` and spaces can never
/// change the shape of the URL.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub fn validate_call_id(id: &str) -> Result<(), CoreError> {
    validate_segment("CallId", "call id", id)
}

/// Refuses a value that cannot travel as exactly one URL path segment of what it names (`what`,
/// e.g. "call id"; `parameter` is the parameter named in the error): empty or blank values, `.`
/// and `..`, control characters, more than [`MAX_CALL_ID_BYTES`]. Everything else is made one
/// segment by [`encode_segment`]. Call ids and tenant ids go through this one check.
pub fn validate_segment(parameter: &'static str, what: &str, value: &str) -> Result<(), CoreError> {
    let refuse = |why: &str| Err(CoreError::invalid(parameter, format!("The {what} {why}.")));
    if value.is_empty() {
        return refuse("is empty");
    }
    if value.trim().is_empty() {
        return refuse("is only white space");
    }
    if value == "." || value == ".." {
        // URL parsers resolve these as relative paths: the request would go to another resource.
        return refuse(&format!("'{value}' is not a valid {what}"));
    }
    if value.chars().any(char::is_control) {
        return refuse("contains control characters (such as NUL, tab or a line break)");
    }
    if value.len() > MAX_CALL_ID_BYTES {
        return refuse(&format!("is {} bytes long; at most {MAX_CALL_ID_BYTES} are allowed", value.len()));
    }
    Ok(())
}

pub fn encode_segment(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// `{graph}/{version}/communications/calls/{id}/keepAlive`, checked after parsing: the URL has
/// exactly that shape and its id segment decodes back to `id`.
pub fn keep_alive_url(graph_endpoint: &str, version: ApiVersion, id: &str) -> Result<reqwest::Url, CoreError> {
    validate_call_id(id)?;
    let text = format!(
        "{}/{}/communications/calls/{}/keepAlive",
        graph_endpoint.trim_end_matches('/'),
        version.as_str(),
        encode_segment(id)
    );
    let url = reqwest::Url::parse(&text)
        .map_err(|e| CoreError::invalid("CallId", format!("Cannot build the keep-alive URL: {e}.")))?;
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let n = segments.len();
    let decodes_back = n >= 5
        && segments[n - 1] == "keepAlive"
        && segments[n - 3] == "calls"
        && percent_decode_str(segments[n - 2]).decode_utf8().is_ok_and(|d| d == id);
    if !decodes_back {
        return Err(CoreError::invalid("CallId", format!("The call id '{id}' cannot be sent as one URL path segment.")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(id: &str) -> String {
        keep_alive_url("https://graph.microsoft.com", ApiVersion::V1, id).unwrap().path().to_owned()
    }

    #[test]
    fn guid_ids_are_unchanged() {
        assert_eq!(
            path("2e1a0b00-2db4-4022-9570-243709c565ab"),
            "/v1.0/communications/calls/2e1a0b00-2db4-4022-9570-243709c565ab/keepAlive"
        );
    }

    #[test]
    fn reserved_characters_stay_in_one_segment() {
        assert_eq!(path("a/b"), "/v1.0/communications/calls/a%2Fb/keepAlive");
        assert_eq!(path("../x"), "/v1.0/communications/calls/..%2Fx/keepAlive");
        assert_eq!(path("a b?c#d"), "/v1.0/communications/calls/a%20b%3Fc%23d/keepAlive");
        assert_eq!(path("%2e%2e"), "/v1.0/communications/calls/%252e%252e/keepAlive");
        assert_eq!(path("$batch"), "/v1.0/communications/calls/%24batch/keepAlive");
        assert_eq!(path("ü"), "/v1.0/communications/calls/%C3%BC/keepAlive");
        assert_eq!(
            path("https://evil.example/x"),
            "/v1.0/communications/calls/https%3A%2F%2Fevil.example%2Fx/keepAlive"
        );
    }

    #[test]
    fn ids_that_would_change_the_target_are_refused() {
        for bad in ["", "   ", ".", "..", "a\nb", "a\tb", "a\0b", "a\rb"] {
            let err = keep_alive_url("https://g", ApiVersion::V1, bad).unwrap_err();
            assert!(matches!(err, CoreError::InvalidArgument { parameter: "CallId", .. }), "{bad:?}");
        }
        let long = "x".repeat(MAX_CALL_ID_BYTES + 1);
        assert!(validate_call_id(&long).is_err());
        assert!(validate_call_id(&"x".repeat(MAX_CALL_ID_BYTES)).is_ok());
    }

    #[test]
    fn endpoint_path_prefix_is_kept() {
        let u = keep_alive_url("http://127.0.0.1:9/prefix/", ApiVersion::Beta, "x").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/prefix/beta/communications/calls/x/keepAlive");
    }
}

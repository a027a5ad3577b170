//! The attempt log as `-Verbose` and `-Debug` show it: the text of each attempt's verbose line and
//! of its `HTTP REQUEST` / `HTTP RESPONSE` blocks (like the official cmdlets' `-Debug` output),
//! made here once so that the host only writes them.

use serde::{Serialize, Serializer};

use super::retry::{AttemptRecord, HttpTrace};

/// The host's line break (the blocks are multi-line text, as .NET's `Environment.NewLine` makes them).
const NEW_LINE: &str = if cfg!(windows) { "\r\n" } else { "\n" };

/// Header names whose values are never shown.
const FILTERED_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// .NET's `HttpStatusCode` names (`Enum.ToString()`), which the official `-Debug` output prints
/// (`Status Code: NotFound (404)`); a status without a name prints as its number.
const DOTNET_STATUS_NAMES: &[(u16, &str)] = &[
    (100, "Continue"), (101, "SwitchingProtocols"), (102, "Processing"), (103, "EarlyHints"),
    (200, "OK"), (201, "Created"), (202, "Accepted"), (203, "NonAuthoritativeInformation"), (204, "NoContent"),
    (205, "ResetContent"), (206, "PartialContent"), (207, "MultiStatus"), (208, "AlreadyReported"), (226, "IMUsed"),
    (300, "MultipleChoices"), (301, "MovedPermanently"), (302, "Found"), (303, "SeeOther"), (304, "NotModified"),
    (305, "UseProxy"), (306, "Unused"), (307, "RedirectKeepVerb"), (308, "PermanentRedirect"),
    (400, "BadRequest"), (401, "Unauthorized"), (402, "PaymentRequired"), (403, "Forbidden"), (404, "NotFound"),
    (405, "MethodNotAllowed"), (406, "NotAcceptable"), (407, "ProxyAuthenticationRequired"), (408, "RequestTimeout"),
    (409, "Conflict"), (410, "Gone"), (411, "LengthRequired"), (412, "PreconditionFailed"),
    (413, "RequestEntityTooLarge"), (414, "RequestUriTooLong"), (415, "UnsupportedMediaType"),
    (416, "RequestedRangeNotSatisfiable"), (417, "ExpectationFailed"), (421, "MisdirectedRequest"),
    (422, "UnprocessableEntity"), (423, "Locked"), (424, "FailedDependency"), (426, "UpgradeRequired"),
    (428, "PreconditionRequired"), (429, "TooManyRequests"), (431, "RequestHeaderFieldsTooLarge"),
    (451, "UnavailableForLegalReasons"), (500, "InternalServerError"), (501, "NotImplemented"), (502, "BadGateway"),
    (503, "ServiceUnavailable"), (504, "GatewayTimeout"), (505, "HttpVersionNotSupported"),
    (506, "VariantAlsoNegotiates"), (507, "InsufficientStorage"), (508, "LoopDetected"), (510, "NotExtended"),
    (511, "NetworkAuthenticationRequired"),
];

/// .NET's name of an HTTP status (`HttpStatusCode.ToString()`): the name, else the number.
pub fn dotnet_status_name(status: u16) -> String {
    DOTNET_STATUS_NAMES
        .iter()
        .find(|(code, _)| *code == status)
        .map_or_else(|| status.to_string(), |(_, name)| (*name).to_owned())
}

impl AttemptRecord {
    /// The `-Verbose` line of this attempt out of `count`, after the host's
    /// `Keep alive call '<id>', `: `attempt 1 of 3: 429 TooManyRequests in 12 ms; waiting 200 ms
    /// (Retry-After: 0.2) before attempt 2`. None for the last attempt (the host's summary line).
    pub fn verbose_line(&self, count: usize) -> Option<String> {
        if self.attempt as usize >= count {
            return None;
        }
        let error = self.error.as_deref().filter(|e| !e.is_empty());
        let outcome = match (self.status, error) {
            (Some(status), Some(error)) => format!("{status} {error}"),
            (Some(status), None) => status.to_string(),
            (None, Some(error)) => format!("no answer ({error})"),
            (None, None) => "no answer (timed out)".to_owned(),
        };
        let mut line = format!("attempt {} of {count}: {outcome} in {} ms", self.attempt, self.elapsed_ms);
        if let Some(wait) = self.wait_ms {
            let retry_after = self.retry_after.as_ref().map(|r| format!(" (Retry-After: {r})")).unwrap_or_default();
            line.push_str(&format!("; waiting {wait} ms{retry_after} before attempt {}", self.attempt + 1));
        }
        Some(line)
    }

    /// The `-Debug` blocks of this attempt (request, then response), when it was traced.
    pub fn debug_text(&self) -> Option<[String; 2]> {
        self.http.as_ref().map(|http| http.debug_text(self.error.as_deref()))
    }
}

impl HttpTrace {
    /// The `HTTP REQUEST` and `HTTP RESPONSE` blocks of the official cmdlets' `-Debug` output;
    /// `error` says why there was no response. Credentials are never shown.
    pub fn debug_text(&self, error: Option<&str>) -> [String; 2] {
        let nl = NEW_LINE;
        let mut request = format!(
            "============================ HTTP REQUEST ============================{nl}{nl}\
             HTTP Method:{nl}{}{nl}{nl}Absolute Uri:{nl}{}{nl}{nl}Headers:{nl}{}",
            self.method,
            self.uri,
            header_line("Authorization", "[Filtered]"),
        );
        request.push_str(&header_lines(&self.request_headers));
        request.push_str(&format!("{nl}Body:{nl}{nl}"));
        let mut response = format!("============================ HTTP RESPONSE ============================{nl}{nl}");
        match self.status {
            None => {
                let why = error.filter(|e| !e.is_empty()).unwrap_or("timed out");
                response.push_str(&format!("Status Code:{nl}(no response: {why}){nl}"));
            }
            Some(status) => {
                response.push_str(&format!("Status Code:{nl}{} ({status}){nl}{nl}Headers:{nl}", dotnet_status_name(status)));
                response.push_str(&header_lines(&self.response_headers));
                response.push_str(&format!("{nl}Body:{nl}{}{nl}", self.response_body.as_deref().unwrap_or_default()));
            }
        }
        [request, response]
    }
}

/// `name                          : value` and a line break, as the official `-Debug` output aligns it.
fn header_line(name: &str, value: &str) -> String {
    format!("{name:<30}: {value}{NEW_LINE}")
}

fn header_lines(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| {
            let filtered = FILTERED_HEADERS.iter().any(|f| f.eq_ignore_ascii_case(name));
            header_line(name, if filtered { "[Filtered]" } else { value })
        })
        .collect()
}

/// One attempt at the ABI: the record's fields, its verbose line and its debug blocks.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShownAttempt<'a> {
    #[serde(flatten)]
    record: &'a AttemptRecord,
    verbose_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debug_text: Option<[String; 2]>,
}

/// Serializes an attempt log with each attempt's text (`verboseLine`, `debugText`): the
/// `serialize_with` of every `attempt_log` field.
pub fn serialize<S: Serializer>(log: &[AttemptRecord], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(log.iter().map(|record| ShownAttempt {
        record,
        verbose_line: record.verbose_line(log.len()),
        debug_text: record.debug_text(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(attempt: u32, status: Option<u16>, error: Option<&str>) -> AttemptRecord {
        AttemptRecord { attempt, status, error: error.map(str::to_owned), elapsed_ms: 12, wait_ms: None, retry_after: None, http: None }
    }

    #[test]
    fn verbose_lines() {
        let mut first = attempt(1, Some(429), Some("TooManyRequests"));
        first.wait_ms = Some(200);
        first.retry_after = Some("0.2".into());
        assert_eq!(
            first.verbose_line(3).as_deref(),
            Some("attempt 1 of 3: 429 TooManyRequests in 12 ms; waiting 200 ms (Retry-After: 0.2) before attempt 2")
        );
        let mut second = attempt(2, None, Some("connection refused"));
        second.wait_ms = Some(400);
        assert_eq!(second.verbose_line(3).as_deref(), Some("attempt 2 of 3: no answer (connection refused) in 12 ms; waiting 400 ms before attempt 3"));
        assert_eq!(attempt(1, None, None).verbose_line(2).as_deref(), Some("attempt 1 of 2: no answer (timed out) in 12 ms"));
        assert_eq!(attempt(1, Some(503), Some("")).verbose_line(2).as_deref(), Some("attempt 1 of 2: 503 in 12 ms"));
        // The last attempt is the host's summary line.
        assert_eq!(attempt(3, Some(200), None).verbose_line(3), None);
    }

    #[test]
    fn debug_blocks() {
        let nl = NEW_LINE;
        let http = HttpTrace {
            method: "POST".into(),
            uri: "https://graph/v1.0/communications/calls/c/keepAlive".into(),
            request_headers: vec![("client-request-id".into(), "r1".into()), ("Cookie".into(), "secret".into())],
            status: Some(429),
            response_headers: vec![("retry-after".into(), "0".into())],
            response_body: Some("{}".into()),
        };
        let [request, response] = http.debug_text(None);
        assert_eq!(
            request,
            format!(
                "============================ HTTP REQUEST ============================{nl}{nl}HTTP Method:{nl}POST{nl}{nl}\
                 Absolute Uri:{nl}https://graph/v1.0/communications/calls/c/keepAlive{nl}{nl}Headers:{nl}\
                 Authorization                 : [Filtered]{nl}client-request-id             : r1{nl}\
                 Cookie                        : [Filtered]{nl}{nl}Body:{nl}{nl}"
            )
        );
        assert_eq!(
            response,
            format!(
                "============================ HTTP RESPONSE ============================{nl}{nl}Status Code:{nl}\
                 TooManyRequests (429){nl}{nl}Headers:{nl}retry-after                   : 0{nl}{nl}Body:{nl}{{}}{nl}"
            )
        );
        let silent = HttpTrace { status: None, response_body: None, ..http };
        assert!(silent.debug_text(Some("connection reset"))[1].ends_with(&format!("Status Code:{nl}(no response: connection reset){nl}")));
        assert!(silent.debug_text(None)[1].ends_with(&format!("(no response: timed out){nl}")));
    }

    #[test]
    fn dotnet_names() {
        assert_eq!(dotnet_status_name(200), "OK");
        assert_eq!(dotnet_status_name(307), "RedirectKeepVerb");
        assert_eq!(dotnet_status_name(418), "418");
        assert_eq!(dotnet_status_name(0), "0");
    }

    #[test]
    fn serialized_with_text() {
        let log = vec![attempt(1, Some(503), None), attempt(2, Some(200), None)];
        let json = serde_json::to_value(AttemptLogJson(&log)).unwrap();
        assert_eq!(json[0]["verboseLine"], "attempt 1 of 2: 503 in 12 ms");
        assert_eq!(json[0]["attempt"], 1);
        assert!(json[1]["verboseLine"].is_null());
        assert!(json[0].get("debugText").is_none());
    }

    struct AttemptLogJson<'a>(&'a [AttemptRecord]);
    impl Serialize for AttemptLogJson<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, serializer)
        }
    }
}

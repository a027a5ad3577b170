//! Response headers as .NET's `HttpResponseHeaders` shows them, which is how Microsoft's cmdlets
//! print them in an error's details: a known header gets its canonical name (`date` → `Date`),
//! other names stay as given; content headers (`Content-Type`, `Expires`, ...) and names that are
//! not HTTP tokens are left out; headers keep their order; and the values of known headers come
//! back as .NET parses and prints them (a date in RFC 1123 form, list headers one value per
//! element, Cache-Control's directives in .NET's order). A value .NET cannot parse stays as it
//! was sent. Measured against .NET 10's `HttpResponseMessage.Headers` (see the tests).

/// How .NET treats a known header in a response's headers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A content header: refused by `HttpResponseHeaders`, so not shown.
    Content,
    /// Shown as sent, under the canonical name (no parser, or one treated as custom).
    Raw,
    /// A date (`Date`): RFC 1123 when it parses.
    Date,
    /// Delta seconds or a date (`Retry-After`).
    RetryAfter,
    /// Whole seconds (`Age`).
    Seconds,
    /// A comma-separated list: one value per non-empty, trimmed element.
    List,
    /// Products and comments separated by spaces (`Server`): one value each.
    Products,
    /// `Cache-Control`: one value, directives in .NET's order.
    CacheControl,
}

/// .NET's known headers (`System.Net.Http.Headers.KnownHeaders`, .NET 10) with how a response
/// shows them. Request headers are treated as custom by `HttpResponseHeaders`: shown raw.
const KNOWN: &[(&str, Kind)] = &[
    (":status", Kind::Raw),
    ("Accept", Kind::Raw),
    ("Accept-Charset", Kind::Raw),
    ("Accept-Encoding", Kind::Raw),
    ("Accept-Language", Kind::Raw),
    ("Accept-Patch", Kind::Raw),
    ("Accept-Ranges", Kind::List),
    ("Access-Control-Allow-Credentials", Kind::Raw),
    ("Access-Control-Allow-Headers", Kind::Raw),
    ("Access-Control-Allow-Methods", Kind::Raw),
    ("Access-Control-Allow-Origin", Kind::Raw),
    ("Access-Control-Expose-Headers", Kind::Raw),
    ("Access-Control-Max-Age", Kind::Raw),
    ("Age", Kind::Seconds),
    ("Allow", Kind::Content),
    ("Alt-Svc", Kind::Raw),
    ("Alt-Used", Kind::Raw),
    ("Authorization", Kind::Raw),
    ("Cache-Control", Kind::CacheControl),
    ("Connection", Kind::List),
    ("Content-Disposition", Kind::Content),
    ("Content-Encoding", Kind::Content),
    ("Content-Language", Kind::Content),
    ("Content-Length", Kind::Content),
    ("Content-Location", Kind::Content),
    ("Content-MD5", Kind::Content),
    ("Content-Range", Kind::Content),
    ("Content-Security-Policy", Kind::Raw),
    ("Content-Type", Kind::Content),
    ("Cookie", Kind::Raw),
    ("Cookie2", Kind::Raw),
    ("Cross-Origin-Resource-Policy", Kind::Raw),
    ("Date", Kind::Date),
    ("ETag", Kind::Raw),
    ("Expect", Kind::Raw),
    ("Expect-CT", Kind::Raw),
    ("Expires", Kind::Content),
    ("From", Kind::Raw),
    ("grpc-encoding", Kind::Raw),
    ("grpc-message", Kind::Raw),
    ("grpc-status", Kind::Raw),
    ("Host", Kind::Raw),
    ("If-Match", Kind::Raw),
    ("If-Modified-Since", Kind::Raw),
    ("If-None-Match", Kind::Raw),
    ("If-Range", Kind::Raw),
    ("If-Unmodified-Since", Kind::Raw),
    ("Keep-Alive", Kind::Raw),
    ("Last-Modified", Kind::Content),
    ("Link", Kind::Raw),
    ("Location", Kind::Raw),
    ("Max-Forwards", Kind::Raw),
    ("Origin", Kind::Raw),
    ("P3P", Kind::Raw),
    ("Pragma", Kind::List),
    ("Proxy-Authenticate", Kind::Raw),
    ("Proxy-Authorization", Kind::Raw),
    ("Proxy-Connection", Kind::Raw),
    ("Proxy-Support", Kind::Raw),
    ("Public-Key-Pins", Kind::Raw),
    ("Range", Kind::Raw),
    ("Referer", Kind::Raw),
    ("Referrer-Policy", Kind::Raw),
    ("Refresh", Kind::Raw),
    ("Retry-After", Kind::RetryAfter),
    ("Sec-WebSocket-Accept", Kind::Raw),
    ("Sec-WebSocket-Extensions", Kind::Raw),
    ("Sec-WebSocket-Key", Kind::Raw),
    ("Sec-WebSocket-Protocol", Kind::Raw),
    ("Sec-WebSocket-Version", Kind::Raw),
    ("Server", Kind::Products),
    ("Server-Timing", Kind::Raw),
    ("Set-Cookie", Kind::Raw),
    ("Set-Cookie2", Kind::Raw),
    ("Strict-Transport-Security", Kind::Raw),
    ("TE", Kind::Raw),
    ("Timing-Allow-Origin", Kind::Raw),
    ("Trailer", Kind::List),
    ("Transfer-Encoding", Kind::List),
    ("TSV", Kind::Raw),
    ("Upgrade", Kind::List),
    ("Upgrade-Insecure-Requests", Kind::Raw),
    ("User-Agent", Kind::Raw),
    ("Vary", Kind::List),
    ("Via", Kind::List),
    ("WWW-Authenticate", Kind::Raw),
    ("Warning", Kind::Raw),
    ("X-AspNet-Version", Kind::Raw),
    ("X-Cache", Kind::Raw),
    ("X-Content-Duration", Kind::Raw),
    ("X-Content-Type-Options", Kind::Raw),
    ("X-Frame-Options", Kind::Raw),
    ("X-MSEdge-Ref", Kind::Raw),
    ("X-Powered-By", Kind::Raw),
    ("X-Request-ID", Kind::Raw),
    ("X-Served-By", Kind::Raw),
    ("X-UA-Compatible", Kind::Raw),
    ("X-XSS-Protection", Kind::Raw),
];

/// An HTTP token (RFC 9110 `tchar`s), as .NET requires of a header name it did not know.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The headers as `HttpResponseHeaders` enumerates them after `TryAddWithoutValidation` of each
/// value in order: (name, values).
pub fn shown<'a>(headers: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> Vec<(String, Vec<String>)> {
    let mut shown: Vec<(String, Kind, Vec<&str>)> = Vec::new();
    for (name, values) in headers {
        let (name, kind) = match KNOWN.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)) {
            Some((_, Kind::Content)) => continue,
            Some((known, kind)) => ((*known).to_owned(), *kind),
            None if is_token(name) => (name.to_owned(), Kind::Raw),
            None => continue,
        };
        match shown.iter_mut().find(|(n, _, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, _, existing)) => existing.extend(values),
            None => shown.push((name, kind, values)),
        }
    }
    shown.into_iter().map(|(name, kind, values)| (name, parsed(kind, &values))).collect()
}

/// The values of one header as .NET returns them.
fn parsed(kind: Kind, values: &[&str]) -> Vec<String> {
    match kind {
        Kind::CacheControl => cache_control(values),
        _ => values.iter().flat_map(|v| value(kind, v)).collect(),
    }
}

fn value(kind: Kind, raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    let parsed = match kind {
        Kind::Date => date(trimmed).map(|d| vec![d]),
        Kind::RetryAfter => seconds(trimmed).or_else(|| date(trimmed)).map(|v| vec![v]),
        Kind::Seconds => seconds(trimmed).map(|v| vec![v]),
        Kind::List => {
            let items: Vec<String> = trimmed.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            (!items.is_empty()).then_some(items)
        }
        Kind::Products => products(trimmed),
        Kind::Content | Kind::Raw | Kind::CacheControl => None,
    };
    parsed.unwrap_or_else(|| vec![raw.to_owned()])
}

/// An HTTP date in RFC 1123 form (.NET's "r").
fn date(text: &str) -> Option<String> {
    let text = text.strip_suffix(" UTC").map(|t| format!("{t} GMT")).unwrap_or_else(|| text.to_owned());
    httpdate::parse_http_date(&text).ok().map(httpdate::fmt_http_date)
}

/// Whole non-negative seconds without leading zeros.
fn seconds(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse::<u64>().ok()).flatten().map(|n| n.to_string())
}

/// `Server`'s products and comments, each a value.
fn products(text: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if !current.is_empty() {
                items.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if depth != 0 {
        return None;
    }
    if !current.is_empty() {
        items.push(current);
    }
    (!items.is_empty()).then_some(items)
}

/// Cache-Control as one value: .NET's directives first in its fixed order, then the others as
/// sent. Any element that is not `token` or `token=value` leaves the values as they were.
fn cache_control(values: &[&str]) -> Vec<String> {
    const ORDER: [&str; 12] = [
        "no-store",
        "no-transform",
        "only-if-cached",
        "public",
        "must-revalidate",
        "proxy-revalidate",
        "no-cache",
        "max-age",
        "s-maxage",
        "max-stale",
        "min-fresh",
        "private",
    ];
    let mut known: Vec<Option<String>> = vec![None; ORDER.len()];
    let mut others = Vec::new();
    for raw in values {
        for element in split_outside_quotes(raw) {
            let element = element.trim();
            if element.is_empty() {
                continue;
            }
            let (name, argument) = match element.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim())),
                None => (element, None),
            };
            if !is_token(name) || argument.is_some_and(|a| a.is_empty() || (!is_token(a) && !is_quoted(a))) {
                return values.iter().map(|v| (*v).to_owned()).collect();
            }
            match ORDER.iter().position(|known| known.eq_ignore_ascii_case(name)) {
                Some(i) => {
                    let lower = ORDER[i];
                    known[i] = Some(match argument {
                        Some(a) => format!("{lower}={a}"),
                        None => lower.to_owned(),
                    });
                }
                None => others.push(element.to_owned()),
            }
        }
    }
    let all: Vec<String> = known.into_iter().flatten().chain(others).collect();
    if all.is_empty() {
        return values.iter().map(|v| (*v).to_owned()).collect();
    }
    vec![all.join(", ")]
}

fn is_quoted(text: &str) -> bool {
    text.len() >= 2 && text.starts_with('"') && text.ends_with('"')
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(pairs: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
        shown(pairs.iter().map(|(n, v)| (*n, vec![*v])))
    }

    fn one(name: &str, value: &str) -> Vec<String> {
        show(&[(name, value)]).into_iter().next().map(|(_, v)| v).unwrap_or_default()
    }

    /// Each expectation was printed by .NET 10 (pwsh 7.6): `TryAddWithoutValidation` of the pairs
    /// into `HttpResponseMessage.Headers`, then `foreach ($h in $r.Headers) { $h.Key; $h.Value }`.
    #[test]
    fn names_as_dotnet_shows_them() {
        let names = |pairs: &[(&str, &str)]| show(pairs).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(&[
                ("strict-transport-security", "max-age=31536000"),
                ("request-id", "r1"),
                ("x-ms-ags-diagnostic", "{}"),
                ("transfer-encoding", "chunked"),
                ("server", "Microsoft-IIS/10.0"),
                ("location", "http://x/"),
                ("www-authenticate", "Bearer"),
                ("te", "trailers"),
                ("x-request-id", "1"),
                ("etag", "\"a\""),
                ("Request-Id", "1"),
            ]),
            [
                "Strict-Transport-Security",
                "request-id",
                "x-ms-ags-diagnostic",
                "Transfer-Encoding",
                "Server",
                "Location",
                "WWW-Authenticate",
                "TE",
                "X-Request-ID",
                "ETag",
            ]
        );
        // Content headers and names that are not tokens are refused; the order is the order added.
        assert_eq!(
            names(&[
                ("x-b", "1"),
                ("content-type", "text/plain"),
                ("allow", "GET"),
                ("expires", "0"),
                ("last-modified", "x"),
                ("content-md5", "x"),
                ("content-length", "3"),
                ("content-security-policy", "x"),
                ("bad name", "x"),
                ("", "y"),
                ("ümlaut", "z"),
                ("x:y", "q"),
                ("a{b", "x"),
                (":status", "200"),
                ("x-a", "2"),
                ("date", "Thu, 03 Dec 2026 11:14:05 GMT"),
            ]),
            ["x-b", "Content-Security-Policy", ":status", "x-a", "Date"]
        );
    }

    #[test]
    fn values_as_dotnet_parses_them() {
        let d = "Thu, 03 Dec 2026 11:14:05 GMT";
        for sent in [d, "Thursday, 03-Dec-26 11:14:05 GMT", "Thu Dec  3 11:14:05 2026", " Thu, 03 Dec 2026 11:14:05 GMT ", "Thu, 03 Dec 2026 11:14:05 UTC"] {
            assert_eq!(one("date", sent), [d], "{sent}");
        }
        assert_eq!(shown([("date", vec!["garbage", d])]), [("Date".to_owned(), vec!["garbage".to_owned(), d.to_owned()])]);
        assert_eq!(one("cache-control", "private"), ["private"]);
        assert_eq!(one("cache-control", "PRIVATE"), ["private"]);
        assert_eq!(one("cache-control", "no-store, no-cache"), ["no-store, no-cache"]);
        assert_eq!(one("cache-control", "no-cache,  no-store"), ["no-store, no-cache"]);
        assert_eq!(
            one(
                "cache-control",
                "max-age=0, private, must-revalidate, no-store, public, no-transform, s-maxage=5, proxy-revalidate, only-if-cached, min-fresh=3, max-stale=4, foo=bar, no-cache"
            ),
            ["no-store, no-transform, only-if-cached, public, must-revalidate, proxy-revalidate, no-cache, max-age=0, s-maxage=5, max-stale=4, min-fresh=3, private, foo=bar"]
        );
        assert_eq!(one("cache-control", "max-stale, immutable, stale-while-revalidate=5"), ["max-stale, immutable, stale-while-revalidate=5"]);
        assert_eq!(one("cache-control", "no-cache=\"a\", private=\"b\""), ["no-cache=\"a\", private=\"b\""]);
        assert_eq!(one("cache-control", "garbage value"), ["garbage value"]);
        assert_eq!(shown([("cache-control", vec!["no-cache,  no-store", "private"])])[0].1, ["no-store, no-cache, private"]);
        assert_eq!(one("vary", "  a ,b,,c  "), ["a", "b", "c"]);
        assert_eq!(shown([("vary", vec!["Accept-Encoding,Origin", "X"])])[0].1, ["Accept-Encoding", "Origin", "X"]);
        assert_eq!(one("vary", "*"), ["*"]);
        assert_eq!(shown([("connection", vec!["keep-alive", "close, upgrade"])])[0].1, ["keep-alive", "close", "upgrade"]);
        assert_eq!(one("server", "Microsoft-IIS/10.0 ASP.NET"), ["Microsoft-IIS/10.0", "ASP.NET"]);
        assert_eq!(one("server", "Kestrel (x) y"), ["Kestrel", "(x)", "y"]);
        assert_eq!(one("server", " srv "), ["srv"]);
        assert_eq!(one("retry-after", "5"), ["5"]);
        assert_eq!(one("retry-after", " 5 "), ["5"]);
        assert_eq!(one("retry-after", "2.128"), ["2.128"]);
        assert_eq!(one("retry-after", d), [d]);
        assert_eq!(one("retry-after", "-1"), ["-1"]);
        assert_eq!(shown([("retry-after", vec!["5", "x"])])[0].1, ["5", "x"]);
        assert_eq!(one("age", "0012"), ["12"]);
        assert_eq!(one("age", "x"), ["x"]);
        assert_eq!(one("transfer-encoding", "chunked"), ["chunked"]);
        assert_eq!(one("transfer-encoding", "gzip, chunked"), ["gzip", "chunked"]);
        assert_eq!(one("transfer-encoding", "CHUNKED"), ["CHUNKED"]);
        assert_eq!(shown([("set-cookie", vec!["a=1", "b=2, c=3"])])[0].1, ["a=1", "b=2, c=3"]);
        assert_eq!(shown([("x-custom", vec!["a", "b,c"])])[0].1, ["a", "b,c"]);
        assert_eq!(shown([("www-authenticate", vec!["Bearer realm=\"x\"", "Basic"])])[0].1, ["Bearer realm=\"x\"", "Basic"]);
        assert_eq!(one("www-authenticate", "Bearer realm=\"x\", error=\"invalid_token\""), ["Bearer realm=\"x\", error=\"invalid_token\""]);
        for (name, raw) in [
            ("x-empty", ""),
            ("x-sp", "  padded  "),
            ("x-nl", "a\r\nb"),
            ("x-nul", "a\0b"),
            ("strict-transport-security", "max-age=31536000"),
            ("pragma", "no-cache"),
            ("etag", "\"abc\""),
            ("etag", "abc"),
            ("accept-ranges", "bytes"),
            ("via", "1.1 proxy"),
            ("accept", "*/*"),
            ("user-agent", "x y"),
        ] {
            assert_eq!(one(name, raw), [raw], "{name}");
        }
    }
}

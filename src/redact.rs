//! The one way a URL reaches a message: without its user info.
//!
//! Proxy URLs carry passwords (`http://alice:p@ss@proxy:3128`), and any URL the library echoes
//! (an endpoint it refuses, a redirect target, the URL reqwest names in an error) may carry user
//! info. Every error, verbose and debug text that shows a URL shows [`url`] of it; the PowerShell
//! module asks the library for the same (`mgka_url_redact`) instead of redacting by itself.

/// What stands for the user info that was removed.
pub const REDACTED_USER_INFO: &str = "***";

/// `text` with everything between the scheme's `://` (or the start, when there is none) and the
/// **last** `@` replaced by `***`. A URL parser takes the user info to end at the last `@` of the
/// authority, which comes before the last `@` of the whole text, so whatever any parser would
/// read as user name or password is gone, however many `@`, `:` or `%` escapes it holds, and
/// even when the text is not a valid URL. (A `@` in a path or query makes it remove more than
/// the user info; that costs a less precise message, never a secret.)
pub fn url(text: &str) -> String {
    let Some(last_at) = text.rfind('@') else { return text.to_owned() };
    let start = text[..last_at].find("://").map_or(0, |scheme_end| scheme_end + 3);
    format!("{}{REDACTED_USER_INFO}{}", &text[..start], &text[last_at..])
}

/// A reqwest error and its causes, with the URL it names (if any) passed through [`url`].
pub fn reqwest_error(error: reqwest::Error) -> String {
    let target = error.url().map(|target| url(target.as_str()));
    let error = error.without_url();
    let mut message = error.to_string();
    if let Some(target) = target {
        message.push_str(&format!(" for url ({target})"));
    }
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_gone_whatever_it_holds() {
        for (raw, shown) in [
            ("http://alice:secret@host:1080", "http://***@host:1080"),
            ("socks5h://alice:secret@host:1080", "socks5h://***@host:1080"),
            ("http://alice:p@ss@host", "http://***@host"),
            ("http://al:ice:p:a@s@s@host:3128/x", "http://***@host:3128/x"),
            ("http://alice:p%40ss%3A@host", "http://***@host"),
            ("http://alice:p/ss@host", "http://***@host"),
            ("alice:secret@host:1080", "***@host:1080"),
            ("http://host:3128", "http://host:3128"),
            ("", ""),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }
}

//! What `Get-MgContext` shows of a `Connect-MgGraph -AccessToken` token, as Microsoft's does: the
//! claims of a JWT (`appid` or `azp`, `tid`, `roles` or `scp`, `app_displayname`). Claims are not
//! secret; the token's signature is never looked at, and nothing is verified (Graph does that).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};

/// The claims of an access token that the context shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenClaims {
    /// `appid`, else `azp`.
    pub client_id: Option<String>,
    /// `tid`.
    pub tenant_id: Option<String>,
    /// `roles` (an app-only token), else `scp` split at spaces; empty when neither.
    pub scopes: Vec<String>,
    /// `app_displayname`, empty when absent.
    pub app_name: String,
}

/// Base64 with or without padding (JWT segments have none); `-`/`_` are mapped to `+`/`/` first.
const LENIENT: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

impl TokenClaims {
    /// The claims of `token` when it is a JWT whose payload (the second of its dot-separated
    /// segments) is base64url-encoded UTF-8 JSON of an object; `None` otherwise (not a JWT:
    /// nothing to show).
    pub fn from_token(token: &str) -> Option<TokenClaims> {
        let mut segments = token.splitn(3, '.');
        let (_header, payload, _rest) = (segments.next()?, segments.next()?, segments.next()?);
        if payload.is_empty() {
            return None;
        }
        let standard: String = payload.chars().map(|c| match c { '-' => '+', '_' => '/', c => c }).collect();
        let json = LENIENT.decode(standard).ok()?;
        let claims = match serde_json::from_slice::<Value>(&json).ok()? {
            Value::Object(map) => map,
            _ => return None,
        };
        let scopes = if let Some(roles) = truthy(&claims, "roles") {
            match roles {
                Value::Array(items) => items.iter().filter(|v| !v.is_null()).map(text).collect(),
                other => vec![text(other)],
            }
        } else if let Some(scp) = truthy(&claims, "scp") {
            text(scp).split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        Some(TokenClaims {
            client_id: truthy(&claims, "appid").or_else(|| truthy(&claims, "azp")).map(text),
            tenant_id: truthy(&claims, "tid").map(text),
            scopes,
            app_name: claim(&claims, "app_displayname").map(text).unwrap_or_default(),
        })
    }
}

/// A claim by name, case-insensitively (an exact match first).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| claims.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// A claim that is set: not null, not empty text, not 0 or false, not an empty array (an array of
/// one counts as that one value).
fn truthy<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fn is_set(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(items) => match items.as_slice() {
                [] => false,
                [one] => is_set(one),
                _ => true,
            },
            Value::Object(_) => true,
        }
    }
    claim(claims, name).filter(|v| is_set(v))
}

/// A claim's value as text: strings as they are, numbers and booleans as .NET writes them
/// (`True`), array elements joined by spaces.
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        Value::Object(_) => "System.Collections.Specialized.OrderedDictionary".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(claims: &str) -> String {
        format!("{}.{}.signature", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn a_token_that_is_not_a_jwt_has_no_claims() {
        for token in ["test-token", "a.b", "a..c", "a.%%%.c", "a.bm90IGpzb24.c", "a.WzEsMl0.c", "a.InRleHQi.c"] {
            assert_eq!(TokenClaims::from_token(token), None, "{token}");
        }
        // Not UTF-8 inside.
        assert_eq!(TokenClaims::from_token(&format!("a.{}.c", URL_SAFE_NO_PAD.encode([0x7b, 0xff, 0x7d]))), None);
    }

    #[test]
    fn an_app_only_token_shows_its_app_tenant_roles_and_name() {
        let token = jwt(
            r#"{"aud":"https://graph.microsoft.com","tid":"tenant-1","appid":"app-1","azp":"other","app_displayname":"Token App","roles":["Calls.Initiate.All","Calls.AccessMedia.All"],"exp":1767225600,"iat":1767222000}"#,
        );
        assert_eq!(
            TokenClaims::from_token(&token),
            Some(TokenClaims {
                client_id: Some("app-1".into()),
                tenant_id: Some("tenant-1".into()),
                scopes: vec!["Calls.Initiate.All".into(), "Calls.AccessMedia.All".into()],
                app_name: "Token App".into(),
            })
        );
    }

    #[test]
    fn a_delegated_token_shows_its_scp_split_at_spaces_and_azp() {
        let claims = TokenClaims::from_token(&jwt(r#"{"azp":"app-2","scp":" User.Read  Calls.Initiate.All ","exp":1}"#)).unwrap();
        assert_eq!(claims.client_id.as_deref(), Some("app-2"));
        assert_eq!(claims.tenant_id, None);
        assert_eq!(claims.scopes, ["User.Read", "Calls.Initiate.All"]);
        assert_eq!(claims.app_name, "");
    }

    #[test]
    fn roles_win_over_scp_and_empty_claims_count_as_absent() {
        let claims = TokenClaims::from_token(&jwt(r#"{"appid":"","azp":"app-3","tid":null,"roles":"One Role","scp":"a b"}"#)).unwrap();
        assert_eq!(claims.client_id.as_deref(), Some("app-3"));
        assert_eq!(claims.tenant_id, None);
        assert_eq!(claims.scopes, ["One Role"]);
        let claims = TokenClaims::from_token(&jwt(r#"{"roles":[],"scp":"a b"}"#)).unwrap();
        assert_eq!(claims.scopes, ["a", "b"]);
        let claims = TokenClaims::from_token(&jwt(r#"{"roles":["x",null,"y"]}"#)).unwrap();
        assert_eq!(claims.scopes, ["x", "y"]);
    }

    #[test]
    fn a_jwt_without_those_claims_shows_empty_scopes_and_name() {
        assert_eq!(TokenClaims::from_token(&jwt(r#"{"exp":1767225600}"#)), Some(TokenClaims::default()));
        assert_eq!(TokenClaims::from_token(&jwt("{}")), Some(TokenClaims::default()));
    }

    #[test]
    fn claims_are_found_whatever_their_case_and_padding() {
        let payload = base64::engine::general_purpose::URL_SAFE.encode(r#"{"TID":"t","AppId":1234,"App_DisplayName":true}"#);
        let claims = TokenClaims::from_token(&format!("h.{payload}.s")).unwrap();
        assert_eq!(claims.tenant_id.as_deref(), Some("t"));
        assert_eq!(claims.client_id.as_deref(), Some("1234"));
        assert_eq!(claims.app_name, "True");
    }

    #[test]
    fn base64url_characters_decode() {
        // '?' and '>' encode to '/' and '+' in standard base64: '_' and '-' in a JWT.
        let claims = TokenClaims::from_token(&jwt(r#"{"tid":"??>>"}"#)).unwrap();
        assert_eq!(claims.tenant_id.as_deref(), Some("??>>"));
        assert!(jwt(r#"{"tid":"??>>"}"#).contains(['_', '-']));
    }
}

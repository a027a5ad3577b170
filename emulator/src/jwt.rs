//! Access tokens shaped like Entra ID's app-only Graph tokens (JWT, version 1.0 claims).
//!
//! Clients such as Microsoft.Graph.Authentication read claims from the token (the tenant from
//! `tid`, the permissions from `roles`), so the emulator's tokens carry them. The signature is
//! random bytes: nobody can verify it, and the emulator recognises its tokens by registration.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha1::{Digest, Sha1};

/// The application permission every emulator token grants.
pub const TOKEN_ROLES: &[&str] = &["Calls.Initiate.All"];

/// The `tid` of tokens issued to managed identities (they ask for no tenant).
pub const MANAGED_IDENTITY_TENANT_ID: &str = "00000000-0000-0000-0000-00000000e1d0";

/// How the client proved who it is (`appidacr`: 1 = secret, 2 = certificate, 0 = none).
#[derive(Clone, Copy)]
pub(crate) enum ClientAuth {
    Secret,
    Certificate,
    ManagedIdentity,
}

/// What an issued token says about its holder.
pub(crate) struct Holder<'a> {
    /// The tenant as the request named it (GUID, domain name, `common`, ...).
    pub tenant: &'a str,
    pub client_id: &'a str,
    /// The Graph resource the token is for (the scope without `/.default`, or `resource`).
    pub audience: &'a str,
    pub auth: ClientAuth,
}

/// The tenant id (`tid`) for a tenant as named in a token request: a GUID names itself
/// (lower-cased); any other name (`common`, `contoso.onmicrosoft.com`) maps to a GUID derived from
/// it, the same for every request.
pub fn tenant_guid(tenant: &str) -> String {
    match uuid::Uuid::parse_str(tenant) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => derived_guid("tenant", &tenant.to_ascii_lowercase()),
    }
}

/// A GUID derived from a name (SHA-1, version 5 layout), stable across runs.
fn derived_guid(kind: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("graph-emulator\n{kind}\n{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'a str,
    alg: &'a str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    app_displayname: &'a str,
    appid: &'a str,
    appidacr: &'a str,
    idp: String,
    idtyp: &'a str,
    oid: String,
    roles: &'a [&'a str],
    sub: String,
    tid: String,
    uti: String,
    ver: &'a str,
}

/// Mints a JWT-shaped access token for `holder`, valid for `lifetime` from now.
pub(crate) fn mint(holder: &Holder<'_>, lifetime: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let tid = match holder.auth {
        ClientAuth::ManagedIdentity => MANAGED_IDENTITY_TENANT_ID.to_string(),
        _ => tenant_guid(holder.tenant),
    };
    let issuer = format!("https://sts.windows.net/{tid}/");
    // The service principal's object id: one per app and tenant.
    let oid = derived_guid(
        "oid",
        &format!("{tid}\n{}", holder.client_id.to_ascii_lowercase()),
    );
    let claims = Claims {
        aud: holder.audience,
        iss: issuer.clone(),
        iat: now.as_secs(),
        nbf: now.as_secs(),
        // Whole seconds after `iat`, as Entra ID's (a fractional lifetime is rounded up).
        exp: now.as_secs() + lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0),
        app_displayname: "graph-emulator app",
        appid: holder.client_id,
        appidacr: match holder.auth {
            ClientAuth::Secret => "1",
            ClientAuth::Certificate => "2",
            ClientAuth::ManagedIdentity => "0",
        },
        idp: issuer,
        idtyp: "app",
        oid: oid.clone(),
        roles: TOKEN_ROLES,
        sub: oid,
        tid,
        uti: URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        ver: "1.0",
    };
    let header = Header {
        typ: "JWT",
        alg: "RS256",
        kid: "graph-emulator",
    };
    let signature: Vec<u8> = (0..8)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Mints and registers a token for an app, as if it had signed in with a secret (for tests that
/// hand a token to `Connect-MgGraph -AccessToken`).
pub(crate) fn issue_for_app(
    state: &crate::state::State,
    tenant: &str,
    client_id: &str,
    lifetime: Duration,
) -> String {
    let token = mint(
        &Holder {
            tenant,
            client_id,
            audience: GRAPH_AUDIENCE,
            auth: ClientAuth::Secret,
        },
        lifetime,
    );
    state.register_token(&token, lifetime);
    token
}

/// The audience of tokens issued without a requested resource.
const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// A string claim (`tid`, `appid`, ...) of a JWT-shaped bearer token, if it has one.
pub(crate) fn claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get(name)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_guids() {
        assert_eq!(
            tenant_guid("0D4B6A3C-1F2E-4A5B-8C7D-9E0F1A2B3C4D"),
            "0d4b6a3c-1f2e-4a5b-8c7d-9e0f1a2b3c4d"
        );
        let common = tenant_guid("common");
        assert_eq!(common, tenant_guid("Common"));
        assert_ne!(common, tenant_guid("contoso.onmicrosoft.com"));
        assert!(uuid::Uuid::parse_str(&common).is_ok());
    }

    #[test]
    fn minted_token_names_its_tenant() {
        let token = mint(
            &Holder {
                tenant: "contoso.onmicrosoft.com",
                client_id: "app",
                audience: "https://graph.microsoft.com",
                auth: ClientAuth::Secret,
            },
            Duration::from_secs(60),
        );
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(
            claim(&token, "tid"),
            Some(tenant_guid("contoso.onmicrosoft.com"))
        );
        assert_eq!(claim(&token, "appid").as_deref(), Some("app"));
        assert_eq!(claim("opaque-token", "tid"), None);
    }
}

//! Secret redaction for everything amlprobe writes that a user may attach to a ticket: proxy
//! credentials, SAS signatures, tokens, keys and anything that looks like one.

use regex_lite::{Captures, Regex};
use std::borrow::Cow;
use std::sync::OnceLock;

/// What replaces a secret.
pub const MASK: &str = "***";

struct Rules {
    url_password: Regex,
    url_user_only: Regex,
    assignment: Regex,
    quoted_field: Regex,
    auth_header: Regex,
    bearer: Regex,
    jwt: Regex,
    private_key: Regex,
    opaque: Regex,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let re = |pattern: &str| Regex::new(pattern).expect("redaction pattern compiles");
        // Names whose values are secrets, as query parameters, env-style or connection-string keys.
        let names = r"sig|signature|token|access_token|refresh_token|id_token|client_secret|secret|password|passwd|pwd|apikey|api_key|api-key|key|accountkey|sharedaccesskey|sharedaccesssignature|sas|credential|credentials";
        Rules {
            url_password: re(r#"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s:@"]*):([^/\s@"]+)@"#),
            url_user_only: re(r#"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s:@"]+)@"#),
            // The value stops at quotes, so a secret inside a JSON string never eats the string's end.
            assignment: re(&format!(r#"(?i)(^|\\[nrt]|[^A-Za-z0-9-])({names})(\s*[=:]\s*(?:\\?")?)([^&\s;,"\\]+)"#)),
            quoted_field: re(&format!(r#"(?i)("(?:{names}|[a-z_]*(?:password|secret|token|key))"\s*:\s*)"[^"]*""#)),
            // Scheme words are ordinary English ("basic configuration"): mask only in a header.
            auth_header: re(
                r#"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)((?:bearer|basic|negotiate|ntlm|sharedkey|sharedaccesssignature)\s+)?([^\s"',;\\]+)"#,
            ),
            bearer: re(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{16,}"),
            jwt: re(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
            private_key: re(r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----"),
            opaque: re(r"[A-Za-z0-9+/_-]{32,}={0,2}"),
        }
    })
}

/// Mixed case and digits in one long run: a key or token, not a word, GUID or hex hash.
fn looks_random(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().any(|c| c.is_ascii_digit())
}

/// `text` with every secret replaced by [`MASK`].
pub fn text(input: &str) -> Cow<'_, str> {
    let r = rules();
    let mut out = r
        .private_key
        .replace_all(input, "-----BEGIN PRIVATE KEY----- *** -----END PRIVATE KEY-----");
    out = Cow::Owned(
        r.url_password
            .replace_all(&out, format!("${{1}}${{2}}:{MASK}@"))
            .into_owned(),
    );
    out = Cow::Owned(r.url_user_only.replace_all(&out, format!("${{1}}{MASK}@")).into_owned());
    out = Cow::Owned(
        r.quoted_field
            .replace_all(&out, format!("${{1}}\"{MASK}\""))
            .into_owned(),
    );
    out = Cow::Owned(
        r.auth_header
            .replace_all(&out, format!("${{1}}${{2}}{MASK}"))
            .into_owned(),
    );
    out = Cow::Owned(r.bearer.replace_all(&out, format!("${{1}} {MASK}")).into_owned());
    out = Cow::Owned(
        r.assignment
            .replace_all(&out, |c: &Captures| {
                if c[4].starts_with(MASK) {
                    c[0].to_string()
                } else {
                    format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
                }
            })
            .into_owned(),
    );
    out = Cow::Owned(r.jwt.replace_all(&out, MASK).into_owned());
    out = Cow::Owned(
        r.opaque
            .replace_all(&out, |c: &Captures| {
                if looks_random(&c[0]) {
                    MASK.to_string()
                } else {
                    c[0].to_string()
                }
            })
            .into_owned(),
    );
    if out == input { Cow::Borrowed(input) } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORAGE_KEY: &str =
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla+/AbCdEf0123456789xyzXYZ==";

    #[test]
    fn secrets_are_masked_wherever_they_appear() {
        let cases = [
            (
                "http://alice:s3cr3t-P4ss@proxy.corp:3128",
                "http://alice:***@proxy.corp:3128",
                "s3cr3t",
            ),
            (
                "https://ghp_TOKENtoken123@github.com/x",
                "https://***@github.com/x",
                "TOKENtoken",
            ),
            (
                "https://sa.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-12-01&sp=r&sig=AbC%2Fdef123%3D",
                "https://sa.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-12-01&sp=r&sig=***",
                "AbC%2F",
            ),
            (
                "AccountKey=abc/def+ghi==;EndpointSuffix=core.windows.net",
                "AccountKey=***;EndpointSuffix=core.windows.net",
                "abc/def",
            ),
            ("PROXY_PASSWORD=hunter2", "PROXY_PASSWORD=***", "hunter2"),
            ("password=\"hunter2\" next", "password=\"***\" next", "hunter2"),
            ("{\"m\": \"token: abc123\"}", "{\"m\": \"token: ***\"}", "abc123"),
            ("{\"m\": \"a\\npwd=abc123\"}", "{\"m\": \"a\\npwd=***\"}", "abc123"),
            ("export API_KEY=k-123", "export API_KEY=***", "k-123"),
            (
                "Authorization: Bearer abc.def-ghi_jkl",
                "Authorization: Bearer ***",
                "abc.def",
            ),
            (
                "Proxy-Authorization: Basic YWxpY2U6czNjcjN0",
                "Proxy-Authorization: Basic ***",
                "YWxpY2U6",
            ),
            (
                "{\"client_secret\": \"x~y.z\", \"region\": \"eastus\"}",
                "{\"client_secret\": \"***\", \"region\": \"eastus\"}",
                "x~y.z",
            ),
            ("{\"storageKey\":\"plain\"}", "{\"storageKey\":\"***\"}", "plain"),
            (
                "id eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end",
                "id *** end",
                "eyJhbGci",
            ),
        ];
        for (input, want, secret) in cases {
            let got = text(input);
            assert_eq!(got, want, "{input}");
            assert!(!got.contains(secret));
        }
        let key = format!("key: {STORAGE_KEY}");
        assert!(!text(&key).contains("Zm9vYmFy"));
        let pem = "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nb";
        assert!(!text(pem).contains("MIIEow"));
        let bare = format!("blob {STORAGE_KEY} end");
        assert_eq!(text(&bare), "blob *** end");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for plain in [
            "nameserver 168.63.129.16",
            "search reddog.microsoft.com",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.workspace.eastus.api.azureml.ms",
            "https://login.microsoftonline.com/common",
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "no_proxy=.privatelink.api.azureml.ms,10.0.0.0/8",
            "key_vault: kv-aml-prod",
            "\"status\": \"works\"",
            "SMB2 negotiate answered (dialect 3.0.2)",
            "seed 001 basic configuration (assumes no pypi.org)",
            "the bearer of bad news",
        ] {
            assert_eq!(text(plain), plain);
        }
    }
}

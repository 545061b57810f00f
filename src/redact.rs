//! Secret redaction for everything amlprobe writes that a user may attach to a ticket: proxy
//! credentials, SAS signatures, tokens, keys and anything that looks like one.

use regex_lite::{Captures, Regex};
use std::borrow::Cow;
use std::sync::OnceLock;

/// What replaces a secret.
pub const MASK: &str = "***";

struct Rules {
    url: Regex,
    proxy_setting: Regex,
    env_assignment: Regex,
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
            url: re(r"[A-Za-z][A-Za-z0-9+.-]*://"),
            // A proxy may be given without a scheme (`https_proxy=user:pass@proxy:3128`).
            proxy_setting: re(r#"(?i)((?:\b|_)proxy(?:\s*=\s*|\s+)["']?)([^\s"']+)"#),
            // `NAME=value` at the start of a line (env files, `export`): the value runs to the end
            // of the line, so `Basic <base64>` is masked whole.
            env_assignment: re(
                r#"(?m)^([ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*)("[^"\n]*"|'[^'\n]*'|.*\S)"#,
            ),
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

/// Words that make a variable's value a secret, whatever the value looks like.
const SECRET_NAME_WORDS: [&str; 7] = ["pass", "auth", "key", "token", "secret", "credential", "sig"];

/// Whether an environment-style variable name says its value is a secret (`PROXY_PASS`,
/// `HTTP_PROXY_AUTHORIZATION`, `AMLPROBE_TOKEN_FILE`, `*_KEY*`).
fn secret_name(name: &str) -> bool {
    // A bypass list is where traffic does not go, not a password.
    let name = name.to_ascii_lowercase().replace("bypass", "");
    SECRET_NAME_WORDS.iter().any(|w| name.contains(w))
}

/// Where the userinfo of the URL `rest` (the text after `scheme://`) ends, if it has one. The
/// authority normally ends at the first `/`; but when it starts like `user:password` (not
/// `host:port`), the userinfo runs to the last `@` as curl reads it, so an unencoded `/` or `@`
/// in a password is masked too.
fn url_userinfo_end(rest: &str) -> Option<usize> {
    // A query or fragment never holds the userinfo.
    let head = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let authority = &head[..head.find('/').unwrap_or(head.len())];
    let password_first = authority
        .split_once(':')
        .is_some_and(|(_, after)| !after.is_empty() && !after.bytes().all(|b| b.is_ascii_digit()));
    if password_first {
        userinfo_end(head)
    } else {
        authority.rfind('@')
    }
}

/// `value` with its userinfo (if any) replaced by [`MASK`].
fn mask_userinfo(value: &str, end: Option<usize>) -> Cow<'_, str> {
    match end {
        Some(at) if &value[..at] != MASK => Cow::Owned(format!("{MASK}{}", &value[at..])),
        _ => Cow::Borrowed(value),
    }
}

/// Userinfo longer than this is not looked for: it bounds the work per URL on hostile input.
const MAX_URL_SCAN: usize = 4096;

/// `text` with the userinfo of every `scheme://` URL masked. Scanning resumes right after each
/// scheme, so a URL nested in another's query is masked too.
fn mask_url_userinfo(scheme: &Regex, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(m) = scheme.find_at(text, pos) {
        let start = m.end();
        let mut end = text[start..]
            .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
            .map_or(text.len(), |i| start + i)
            .min(start + MAX_URL_SCAN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let rest = &text[start..end];
        out.push_str(&text[pos..start]);
        pos = start;
        if let Some(at) = url_userinfo_end(rest).filter(|&at| &rest[..at] != MASK) {
            out.push_str(MASK);
            pos += at;
        }
    }
    out.push_str(&text[pos..]);
    out
}

/// `text` with every secret replaced by [`MASK`].
pub fn text(input: &str) -> Cow<'_, str> {
    let r = rules();
    let mut out = r
        .private_key
        .replace_all(input, "-----BEGIN PRIVATE KEY----- *** -----END PRIVATE KEY-----");
    out = Cow::Owned(mask_url_userinfo(&r.url, &out));
    out = Cow::Owned(
        r.proxy_setting
            .replace_all(&out, |c: &Captures| {
                if c[2].contains("://") {
                    c[0].to_string()
                } else {
                    format!("{}{}", &c[1], mask_userinfo(&c[2], userinfo_end(&c[2])))
                }
            })
            .into_owned(),
    );
    out = Cow::Owned(
        r.env_assignment
            .replace_all(&out, |c: &Captures| {
                let value = &c[3];
                let quote = &value[..usize::from(value.starts_with(['"', '\'']))];
                if secret_name(&c[2]) && value.trim_matches(['"', '\'']) != MASK {
                    format!("{}{quote}{MASK}{quote}", &c[1])
                } else {
                    c[0].to_string()
                }
            })
            .into_owned(),
    );
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
                if c[4].trim_start_matches('\'').starts_with(MASK) {
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

/// Where a proxy URL's userinfo ends: at the last `@`, as curl reads `https_proxy`, so an
/// unencoded `/` or `@` in a password stays in the password. `rest` is the URL after `scheme://`.
pub fn userinfo_end(rest: &str) -> Option<usize> {
    rest.rfind('@')
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
                "http://***@proxy.corp:3128",
                "alice",
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
                "DefaultEndpointsProtocol=https;AccountKey=abc/def+ghi==;EndpointSuffix=core.windows.net",
                "DefaultEndpointsProtocol=https;AccountKey=***;EndpointSuffix=core.windows.net",
                "abc/def",
            ),
            // A variable named like a secret is masked to the end of its line.
            ("AccountKey=abc/def+ghi==;EndpointSuffix=x", "AccountKey=***", "abc/def"),
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
    fn the_whole_userinfo_is_masked_even_with_unencoded_slash_or_at() {
        let cases = [
            (
                "https_proxy=http://alice:pa/ss@w@rd@proxy:3128\nnext",
                "https_proxy=http://***@proxy:3128\nnext",
            ),
            ("HTTPS_PROXY=alice:pa/ss@proxy:3128", "HTTPS_PROXY=***@proxy:3128"),
            (
                "command amlprobe run --proxy http://ops:p@ss/w0rd@10.0.0.9:3128 --quiet",
                "command amlprobe run --proxy http://***@10.0.0.9:3128 --quiet",
            ),
            ("run --proxy ops:S3cret@10.0.0.9:3128", "run --proxy ***@10.0.0.9:3128"),
            ("http://alice%3AS3cr3t@proxy:3128/", "http://***@proxy:3128/"),
            (
                "https://a.example/?next=https://bob:Pw0rd@h.example",
                "https://a.example/?next=https://***@h.example",
            ),
            (
                "\"proxy\": \"http://ghp_UserTok3n@proxy:3128\"",
                "\"proxy\": \"http://***@proxy:3128\"",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    #[test]
    fn variables_named_like_secrets_are_masked_whatever_their_value() {
        let cases = [
            ("PROXY_PASS=hunter2", "PROXY_PASS=***"),
            ("PROXY_AUTH=user:pass", "PROXY_AUTH=***"),
            (
                "HTTP_PROXY_AUTHORIZATION=Basic dXNlcjpwYXNz",
                "HTTP_PROXY_AUTHORIZATION=***",
            ),
            ("AMLPROBE_STORAGE_KEY_2=plainvalue", "AMLPROBE_STORAGE_KEY_2=***"),
            ("AMLPROBE_TOKEN_FILE=/var/run/token", "AMLPROBE_TOKEN_FILE=***"),
            ("export MY_SECRET='a b c'", "export MY_SECRET='***'"),
            (
                "AZURE_CLIENT_CREDENTIAL=x\nSAS_SIG=y",
                "AZURE_CLIENT_CREDENTIAL=***\nSAS_SIG=***",
            ),
            (
                "a=1\n  Proxy_Password = \"p w\" \nb=2",
                "a=1\n  Proxy_Password = \"***\" \nb=2",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
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
            "https://registry.npmjs.org/@types/node",
            "https://host.example:443/pkg@1.0",
            "the proxy answered 403",
            "PROXY_BYPASS=.corp.example,10.0.0.0/8",
            "HTTPS_PROXY=http://proxy.corp:3128",
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    use proptest::prelude::*;

    /// A secret value: mixed case and digits, as keys, tokens and passwords are.
    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]{10,40}".prop_map(|v| format!("Zq9{v}"))
    }

    /// Text around a secret: words, punctuation and line breaks, never a secret by itself.
    fn filler() -> impl Strategy<Value = String> {
        "([a-z]{1,8}|[ ,.:;()\\[\\]\\n]){0,6}"
    }

    /// Every way a secret reaches a file, a message or an argument amlprobe writes.
    fn planted(value: &str, form: usize) -> String {
        match form % 10 {
            0 => format!(
                "DefaultEndpointsProtocol=https;AccountName=sa;AccountKey={value}==;EndpointSuffix=core.windows.net"
            ),
            1 => format!("https://sa.blob.core.windows.net/c?sv=2022-11-02&se=2026&sig={value}%3D"),
            2 => format!("http://alice:{value}@proxy.corp:3128"),
            3 => format!("https_proxy=bob:{value}@10.0.0.9:3128"),
            4 => format!("Authorization: Bearer {value}"),
            5 => format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIx{value}.c2lnbmF0dXJl"),
            6 => format!("{{\"client_secret\": \"{value}\"}}"),
            7 => format!("\nPROXY_PASSWORD={value}\n"),
            8 => format!("-----BEGIN PRIVATE KEY-----\n{value}\n-----END PRIVATE KEY-----"),
            _ => format!("password={value}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// No planted secret survives, whatever text surrounds it.
        #[test]
        fn no_planted_secret_survives(
            value in secret(),
            form in 0usize..10,
            before in filler(),
            after in filler(),
        ) {
            let input = format!("{before} {} {after}", planted(&value, form));
            let out = text(&input);
            prop_assert!(!out.contains(&value), "{input:?} -> {out:?}");
        }

        /// Redacting twice changes nothing: a masked text stays as it is, so reports and
        /// bundles that pass through redaction again (`bundle --from-report`) are stable.
        #[test]
        fn redacting_twice_changes_nothing(
            value in secret(),
            form in 0usize..10,
            before in filler(),
            after in filler(),
            noise in "\\PC{0,60}",
        ) {
            for input in [format!("{before} {} {after}", planted(&value, form)), noise.clone()] {
                let once = text(&input).into_owned();
                let twice = text(&once).into_owned();
                prop_assert_eq!(&once, &twice, "input {:?}", input);
            }
        }
    }
}

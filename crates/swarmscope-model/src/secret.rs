//! Recognising secrets: field names that say they hold one, and strings
//! shaped like an Anthropic key (`sk-ant-…`) or a bearer token. The SDK's
//! logger masks them before a line is written; the collector masks them (and
//! its configured patterns) before anything reaches disk.

use std::borrow::Cow;

/// What a masked secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Words that make a field secret when a field name contains them as a whole
/// word (`refresh_token`, `refreshToken`, `Set-Cookie`), so that
/// `input_tokens` or `max_tokens` stay readable.
const SECRET_WORDS: &[&str] = &[
    "authorization",
    "auth",
    "apikey",
    "token",
    "password",
    "passwd",
    "secret",
    "cookie",
    "credential",
    "credentials",
];

/// Consecutive word pairs that make a field secret (`api_key`, `privateKey`).
const SECRET_PAIRS: &[(&str, &str)] = &[("api", "key"), ("private", "key"), ("access", "key")];

/// Splits a field name into lowercase words at `_`, `-`, `.`, spaces and
/// camelCase boundaries.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a field of this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    if name.is_ascii() {
        return is_secret_ascii(name.as_bytes());
    }
    let w = words(name);
    w.iter().any(|x| SECRET_WORDS.contains(&x.as_str()))
        || w.windows(2)
            .any(|p| SECRET_PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
}

/// [`is_secret_name`] for ASCII names, without allocating: the collector
/// asks it for every attribute of every span.
fn is_secret_ascii(name: &[u8]) -> bool {
    let eq = |w: &[u8], lower: &str| w.eq_ignore_ascii_case(lower.as_bytes());
    let mut prev: Option<&[u8]> = None;
    let mut start = 0;
    let mut prev_lower = false;
    let mut i = 0;
    while i <= name.len() {
        let c = name.get(i).copied();
        let separator = matches!(c, None | Some(b'_' | b'-' | b'.' | b' '));
        let camel = c.is_some_and(|c| c.is_ascii_uppercase()) && prev_lower && i > start;
        if separator || camel {
            if i > start {
                let w = &name[start..i];
                if SECRET_WORDS.iter().any(|s| eq(w, s))
                    || prev.is_some_and(|p| SECRET_PAIRS.iter().any(|(a, b)| eq(p, a) && eq(w, b)))
                {
                    return true;
                }
                prev = Some(w);
            }
            start = if separator { i + 1 } else { i };
        }
        prev_lower = c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) && !separator;
        i += 1;
    }
    false
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

/// Masks Anthropic-style keys and bearer tokens inside `text`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    // Fast path: nothing that could start a secret.
    let bytes = text.as_bytes();
    let maybe = bytes
        .windows(3)
        .any(|w| w == b"sk-" || w.eq_ignore_ascii_case(b"bea"));
    if !maybe {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        let rest = &bytes[i..];
        // Both prefixes ("sk-ant-" and "bearer ") are 7 bytes long.
        let is_prefix = rest.starts_with(b"sk-ant-")
            || (rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"bearer "));
        if is_prefix {
            let p = 7;
            let len = rest[p..].iter().take_while(|&&b| token_char(b)).count();
            if len >= 8 {
                out.push_str(&text[i..i + p]);
                out.push_str(MASK);
                i += p + len;
                changed = true;
                continue;
            }
        }
        // Copy one UTF-8 character.
        let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + ch_len]);
        i += ch_len;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for n in [
            "authorization",
            "Authorization",
            "api_key",
            "x_api_key",
            "apiKey",
            "refreshToken",
            "access_token",
            "db_password",
            "Set-Cookie",
            "client_secret",
            "privateKey",
            "token",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "tenant_id",
            "model",
            "input_tokens",
            "max_tokens",
            "gen_ai.usage.output_tokens",
            "author",
            "keyboard",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn the_ascii_path_agrees_with_the_general_one() {
        for n in [
            "api_key",
            "apiKey",
            "APIKey",
            "x-api-key",
            "Set-Cookie",
            "refreshToken",
            "tokens",
            "input_tokens",
            "privateKey",
            "private.key",
            "keyboard",
            "access_key_id",
            "AUTH",
            "oauth",
            "my__token__",
            "a",
            "",
            "db_password2",
            "tokenCount",
            "TokenCount",
        ] {
            let w = words(n);
            let general = w.iter().any(|x| SECRET_WORDS.contains(&x.as_str()))
                || w.windows(2)
                    .any(|p| SECRET_PAIRS.contains(&(p[0].as_str(), p[1].as_str())));
            assert_eq!(is_secret_ascii(n.as_bytes()), general, "{n}");
        }
    }

    #[test]
    fn keys_and_bearer_tokens_are_masked_in_text() {
        let s = scrub("calling with sk-ant-api03-AbCdEf1234567890_xyz and more");
        assert_eq!(s, "calling with sk-ant-[REDACTED] and more");
        let s = scrub("header Authorization: Bearer eyJhbGciOi.payload.sig done");
        assert_eq!(s, "header Authorization: Bearer [REDACTED] done");
        assert!(matches!(
            scrub("nothing to see, bearer of news"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            scrub("ünïcödé sk-ant-0123456789abcdef ✓"),
            "ünïcödé sk-ant-[REDACTED] ✓"
        );
    }
}

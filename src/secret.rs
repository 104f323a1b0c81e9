//! What text may hold a secret: whether a name or a value that no rule of ours shapes (a
//! twin key, a device id in a message, an operator's status reason, a twin value in a report)
//! may hold a symmetric key or a credential made from one, and how such text is then shown (by
//! its [`Fingerprint`]; a key's whole text by its canonical spelling's,
//! [`canonical_fingerprint`]); and the shape of a key itself ([`base64_len`], [`KEY_BYTES`],
//! [`canonical_base64`], [`base64_spellings`]).
//!
//! The checks err on the side of hiding. Text taken for a key is only shown by its fingerprint,
//! which costs a reader a name now and then (a long camel-case word, say); text taken for none
//! is shown whole, in an error, a log or a report that may be kept or sent anywhere, and a key
//! shown so cannot be taken back. So every check is broader than the shape of a key.
//!
//! Broader means text that is no key is hidden too, and a plain fingerprint of it can be
//! reversed by guessing (a long passphrase is 22 letters in a row, and 24 of them have a key's
//! shape). Values and status reasons, which a person may have chosen, are therefore never
//! shown by a plain fingerprint ([`shown_secret`]): as `<hidden>`, or by a keyed fingerprint
//! ([`FingerprintKey`](crate::FingerprintKey)) where a report is given a key. Names are shown
//! by their plain fingerprint: one is hidden only in an error about damaged input, which has
//! no key to hand, and the fingerprint tells two such names apart.

use crate::credentials::Fingerprint;
use crate::fingerprint_key::FingerprintKey;

/// Length in bytes that `text` decodes to if it is standard, padded base64.
pub(crate) fn base64_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &bytes[..bytes.len() - pad];
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    body.iter().all(alphabet).then(|| bytes.len() / 4 * 3 - pad)
}

/// How many bytes a symmetric key decodes to: IoT Hub takes 16 to 64. Text that is padded
/// base64 of such a length ([`base64_len`]) is a key to
/// [`SymmetricKey::new`](crate::SymmetricKey::new) and, whole, to [`canonical_fingerprint`].
pub(crate) const KEY_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// The fingerprint of secret `text` as a report shows it: where the whole text is a symmetric
/// key's ([`KEY_BYTES`] of padded base64), that of its [canonical spelling](canonical_base64),
/// which is the fingerprint [`SymmetricKey`](crate::SymmetricKey) shows for every spelling of
/// the key's bytes; the text's own otherwise. So a key kept in a twin value shows one
/// fingerprint however it is spelt.
///
/// Cheap for text that is no key: the length and alphabet checks of [`base64_len`] end at the
/// first character out of place, and only a key's text, at most 88 characters, is copied.
pub(crate) fn canonical_fingerprint(text: &str) -> Fingerprint {
    if base64_len(text).is_some_and(|bytes| KEY_BYTES.contains(&bytes)) {
        Fingerprint::of(&canonical_base64(text.to_owned()))
    } else {
        Fingerprint::of(text)
    }
}

/// The standard base64 alphabet, each character at its value.
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The character before the padding of padded base64 `text`: its index, its value in the
/// alphabet and the mask of its low bits that decoders ignore (4 before `==`, 2 before `=`).
/// `None` for text without padding, or not base64 there: it has no other spelling.
fn unused_bits(text: &str) -> Option<(usize, usize, usize)> {
    let pad = text.bytes().rev().take_while(|&b| b == b'=').count();
    let unused: usize = match pad {
        1 => 0b11,
        2 => 0b1111,
        _ => return None,
    };
    let at = text.len().checked_sub(pad + 1)?;
    let last = *text.as_bytes().get(at)?;
    let value = BASE64_ALPHABET.iter().position(|&c| c == last)?;
    Some((at, value, unused))
}

/// The one spelling of padded base64 `text` that an encoder writes for the bytes a decoder
/// reads from it: the character before the padding with its unused low bits cleared.
///
/// Before `==` the last character carries 2 bits of the last byte and 4 unused; before `=`,
/// 4 bits and 2 unused. Decoders ignore the unused bits (.NET's `Convert.FromBase64String`,
/// which IoT Hub uses, among them), so `…Zg==` and `…Zh==` are one key to the hub. Text
/// without padding, or not base64 (see [`base64_len`]), has no other spelling and is returned
/// as it is.
pub(crate) fn canonical_base64(mut text: String) -> String {
    if let Some((at, value, unused)) = unused_bits(&text) {
        // The character at `at` is ASCII (it is in the alphabet): both ends of the range are
        // character boundaries.
        let canonical = char::from(BASE64_ALPHABET[value & !unused]);
        text.replace_range(at..=at, canonical.encode_utf8(&mut [0; 4]));
    }
    text
}

/// Every spelling a decoder reads as the bytes of `canonical` (a [`canonical_base64`] text),
/// `canonical` first: the character before the padding with each setting of its unused low
/// bits, so 16 texts before `==`, 4 before `=`, and `canonical` alone without padding.
///
/// What an earlier build stored of a key it held spelt otherwise (the fingerprint a rotation
/// retired) is found again from these: that build kept each key as written, and the key now
/// reads as its canonical spelling.
pub(crate) fn base64_spellings(canonical: &str) -> impl Iterator<Item = String> + '_ {
    let (at, value, unused) = unused_bits(canonical).unwrap_or((0, 0, 0));
    (0..=unused).map(move |bits| {
        let mut text = canonical.to_owned();
        if bits != 0 {
            // As in `canonical_base64`: the character at `at` is ASCII. `value` has its
            // unused bits clear, so `value | bits` stays in the alphabet.
            let spelt = char::from(BASE64_ALPHABET[value | bits]);
            text.replace_range(at..=at, spelt.encode_utf8(&mut [0; 4]));
        }
        text
    })
}

/// Hidden text that a person may have chosen (a twin or metadata value, a status reason) as a
/// report, a log or a message shows it: by its keyed fingerprint, `<hmac-sha256:…>`, under
/// `key`, and as `<hidden>` without one. Never by its plain fingerprint, whatever its shape:
/// a password of 24 letters reads as a key's base64, and a dictionary reverses its SHA-256
/// (review 72).
pub(crate) fn shown_secret(secret: &str, key: Option<&FingerprintKey>) -> String {
    key.map_or_else(
        || HIDDEN.to_owned(),
        |key| format!("<{}>", key.fingerprint(secret)),
    )
}

/// How hidden text is shown where no [`FingerprintKey`] is given.
pub(crate) const HIDDEN: &str = "<hidden>";

/// A name as a message shows it: by its fingerprint, `<sha256:…>`, where it [may hold a
/// key](may_hold_key), whole otherwise. Shared by what shows a name no rule of ours shapes (a
/// refused twin key, a device id or an event id read as a key), so that all show a key alike:
/// a key's whole text, in any spelling, by the fingerprint the key shows elsewhere
/// ([`canonical_fingerprint`]). Text a person may have chosen (a value, a status reason) is
/// shown by [`shown_secret`] instead.
pub(crate) fn shown_text(text: &str) -> std::borrow::Cow<'_, str> {
    if may_hold_key(text) {
        format!("<{}>", canonical_fingerprint(text)).into()
    } else {
        text.into()
    }
}

/// Whether `text` may hold a symmetric key or a credential made from one, alone or beside
/// other text (`x KEY`, `KEY\n`, `a.KEY`): a name in which damaged input may have put one,
/// which a message about that name must then not show, or a value a report shows. It may where
/// it holds
///
/// - 22 or more base64 characters in a row (letters, digits, `+`, `/`), as many as a 16-byte
///   key holds before its padding, URL-encoded ones too (`%2B`, `%2F`: a SAS token's
///   signature is URL-encoded, and the escapes split it into runs too short to read as a key);
/// - a SAS token or a connection string ([`CREDENTIAL_MARKERS`], in any letter case).
///
/// Broader than the shape of a key on purpose: a long camel-case name is caught too and shown
/// by its fingerprint, the price of never showing a key that sits beside a character a key
/// does not hold. Every caller hides what it finds (a refused twin path or id in a message,
/// a value in a report), so each is served by the broadest check.
pub(crate) fn may_hold_key(text: &str) -> bool {
    holds_key_text(text) || holds_credential_marker(text)
}

/// Whether `text` holds 22 or more base64 characters in a row, each plain or URL-encoded
/// (`%2B`, `%2F`, in any letter case).
fn holds_key_text(text: &str) -> bool {
    const KEY_TEXT: usize = 22;
    let bytes = text.as_bytes();
    let (mut run, mut at) = (0, 0);
    while at < bytes.len() {
        let b = bytes[at];
        let width = if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' {
            1
        } else if starts_with_encoded_base64(&bytes[at..]) {
            3
        } else {
            0
        };
        run = if width == 0 { 0 } else { run + 1 };
        if run >= KEY_TEXT {
            return true;
        }
        at += width.max(1);
    }
    false
}

/// Whether `bytes` start with a base64 character URL-encoded: `%2B` (`+`) or `%2F` (`/`), in
/// any letter case.
fn starts_with_encoded_base64(bytes: &[u8]) -> bool {
    match bytes {
        [b'%', b'2', c, ..] => matches!(c.to_ascii_uppercase(), b'B' | b'F'),
        _ => false,
    }
}

/// Text, in lower case, that only a SAS token or a connection string holds, whatever their
/// signature's or key's length and encoding: the SAS token's scheme, its `sig` parameter (the
/// HMAC of a key, which grants what the key grants until it expires) and a connection
/// string's key, each as written and URL-encoded (a SAS URL inside another URL's query). `sig`
/// is matched wherever it ends a name, so `&sig=`, `?sig=` and `%26sig%3D` alike; a name
/// ending in `sig` is hidden with them.
const CREDENTIAL_MARKERS: &[&str] = &[
    "sharedaccesssignature",
    "sharedaccesskey=",
    "sharedaccesskey%3d",
    "sig=",
    "sig%3d",
];

/// Whether `text` holds one of [`CREDENTIAL_MARKERS`] in any letter case. Compared in place:
/// each starts with `s`, so only the places holding one are compared.
fn holds_credential_marker(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len())
        .filter(|&at| bytes[at].eq_ignore_ascii_case(&b's'))
        .any(|at| {
            CREDENTIAL_MARKERS.iter().any(|marker| {
                (bytes[at..].get(..marker.len()))
                    .is_some_and(|held| held.eq_ignore_ascii_case(marker.as_bytes()))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_may_hold_a_key_from_22_base64_characters_in_a_row() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
        for text in [
            key,
            &key[..22],
            "x MDEyMzQ1Njc4OWFiY2RlZg",
            "a.MDEyMzQ1Njc4OWFi+/RlZg==\n",
        ] {
            assert!(may_hold_key(text), "{text}");
        }
        for text in [
            "",
            "site",
            &key[..21],
            "MDEyMzQ1Njc4O.WFiY2RlZg==",
            "temperature-offset-celsius",
        ] {
            assert!(!may_hold_key(text), "{text}");
        }
    }

    /// A SAS token's signature is URL-encoded (`%2B`, `%2F`, `%3D`), which split it into runs
    /// too short to read as a key: the token was shown whole (2026-11-23, found in review).
    #[test]
    fn text_may_hold_a_sas_token_a_connection_string_or_an_encoded_key() {
        let signature = "Gi7UJZ3nPmO%2BjQKLzDt9Y1hwvqD%2BZyGQpD6xuH7L0dA%3D";
        for text in [
            &format!("SharedAccessSignature sr=hub%2Fdevices%2Fd&sig={signature}&se=1700000000"),
            "sharedaccesssignature",
            "https://a.blob.core.windows.net/fw/1.bin?sv=2022-11-02&sr=b&SIG=abc&se=1",
            "x?url=https%3A%2F%2Fa%2Fb%3Fsv%3D1%26sig%3Dabc",
            "HostName=h;DeviceId=d;SharedAccessKey=abc",
            "HostName%3Dh%3BSHAREDACCESSKEY%3Dabc",
            signature,
            "x Gi7UJZ3nPmO%2bjQKLzDt9Y1%2fhw",
        ] {
            assert!(may_hold_key(text), "{text}");
        }
        // Compared from each `s`, in lower case.
        for marker in CREDENTIAL_MARKERS {
            assert!(marker.starts_with('s') && *marker == marker.to_lowercase());
        }
        for text in [
            "signal=3",
            "design",
            "SharedAccess",
            "temperature%20offset%20celsius%20average",
            "Gi7UJZ3nPmO%2BjQKLzDt9Y",
            "Gi7UJZ3nPmO%3DjQKLzDt9Y1hwvqD",
        ] {
            assert!(!may_hold_key(text), "{text}");
        }
    }

    /// A name that is a whole key shows the key's fingerprint in any spelling; text around a
    /// key keeps its own (found in review: a key spelt otherwise showed a second fingerprint
    /// for the same key).
    #[test]
    fn a_key_as_free_text_shows_its_canonical_fingerprint() {
        let canonical = "MDEyMzQ1Njc4OWFiY2RlZg==";
        let spelt_otherwise = "MDEyMzQ1Njc4OWFiY2RlZh==";
        let key = crate::SymmetricKey::new(canonical).expect("a key");
        for text in [canonical, spelt_otherwise] {
            assert_eq!(
                shown_text(text),
                format!("<{}>", key.fingerprint()),
                "{text}"
            );
        }
        let beside = format!("x {spelt_otherwise}");
        assert_eq!(
            shown_text(&beside),
            format!("<{}>", Fingerprint::of(&beside))
        );
    }

    #[test]
    fn canonical_base64_clears_the_unused_bits_before_the_padding() {
        let canonical = |text: &str| canonical_base64(text.to_owned());
        // `h` is 33: 0b10_0001 before `==` keeps 0b10_0000, `g`.
        assert_eq!(canonical("AAAAZh=="), "AAAAZg==");
        assert_eq!(canonical("AA/="), "AA8=");
        assert_eq!(canonical("AA//"), "AA//");
        assert_eq!(canonical("AAB="), "AAA=");
        for kept in ["AAAAZg==", "AA8=", "", "===", "AA*=", "AAAA"] {
            assert_eq!(canonical(kept), kept);
        }
    }

    #[test]
    fn base64_spellings_are_every_text_of_the_same_bytes() {
        let spellings = |text: &str| base64_spellings(text).collect::<Vec<_>>();
        let before_two = spellings("AAAAZg==");
        assert_eq!(before_two.len(), 16);
        assert_eq!(before_two[0], "AAAAZg==");
        assert_eq!(before_two[1], "AAAAZh==");
        assert_eq!(before_two[15], "AAAAZv==");
        assert_eq!(spellings("AA8="), ["AA8=", "AA9=", "AA+=", "AA/="]);
        assert_eq!(spellings("AA//"), ["AA//"]);
        for (canonical, all) in [("AAAAZg==", before_two), ("AA8=", spellings("AA8="))] {
            for spelt in &all {
                assert_eq!(canonical_base64(spelt.clone()), canonical, "{spelt}");
            }
        }
    }

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len("AAAA"), Some(3));
        assert_eq!(base64_len("AAA="), Some(2));
        assert_eq!(base64_len("AA=="), Some(1));
        assert_eq!(base64_len("A==="), None);
        assert_eq!(base64_len("AA*A"), None);
        assert_eq!(base64_len("AAA"), None);
    }
}

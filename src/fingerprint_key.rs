//! The operator's key for fingerprints of secrets people choose.
//!
//! A [`Fingerprint`](crate::Fingerprint) is an unsalted SHA-256 prefix: safe for a symmetric
//! key (16 to 64 random bytes, beyond any search) and unsafe for a password kept in a twin
//! value, which a dictionary of a few thousand guesses finds from it. So a report never shows
//! a value hidden as a secret by its plain fingerprint: it shows `<hidden>`, or, given a
//! [`FingerprintKey`], the value's [`KeyedFingerprint`]: an HMAC-SHA-256 under that key, which
//! nobody without the key can test a guess against, and which stays the same from run to run
//! (a random key per run would do the first and break the second: same inputs, byte-identical
//! outputs).
//!
//! HMAC is written here, on the `sha2` the crate already uses, rather than taken from the
//! `hmac` crate: that one's current release needs a newer Rust than this crate's
//! `rust-version`, for ten lines that RFC 4231's test vectors pin below.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// SHA-256 reads its input in blocks of 64 bytes; HMAC pads its key to one block.
const BLOCK: usize = 64;

/// A key for [`KeyedFingerprint`]s of the values a report hides: bytes an operator generates
/// once (`head -c 32 /dev/urandom > fingerprint.key`) and keeps, so that reports of every run
/// fingerprint a value alike and only holders of the key can tell which value a fingerprint
/// is.
///
/// `Debug` never shows the key, nor anything computed from it alone.
///
/// # Examples
///
/// ```
/// use failback::FingerprintKey;
///
/// let key = FingerprintKey::new(b"0123456789abcdef0123456789abcdef")?;
/// assert_eq!(key.fingerprint("hunter2"), key.fingerprint("hunter2"));
/// assert_eq!(format!("{key:?}"), "FingerprintKey(..)");
/// assert!(FingerprintKey::new(b"short").is_err()); // under 16 bytes
/// // Longer than a block: hashed to a block's size, as HMAC does.
/// assert!(FingerprintKey::new(&(0..=255).collect::<Vec<u8>>()).is_ok());
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FingerprintKey {
    /// The key as HMAC uses it: the bytes given, or their SHA-256 where they are longer than
    /// a block, padded with zeros to a block (RFC 2104). Two keys that HMAC reads alike are
    /// equal.
    block: [u8; BLOCK],
}

impl FingerprintKey {
    /// The fewest bytes a key may hold, once HMAC has read it: 128 bits, as few as a
    /// symmetric key of IoT Hub's.
    pub const MIN_BYTES: usize = 16;

    /// A key of the bytes `material`, read as HMAC reads a key (so a fingerprint can be
    /// checked with any HMAC-SHA-256 tool given the same bytes).
    ///
    /// Whether the bytes are random cannot be told, but two slips that make a key anyone can
    /// find are refused: fewer than [`MIN_BYTES`](Self::MIN_BYTES) bytes as HMAC reads them
    /// (it pads a key of up to 64 bytes with zeros, so zeros at its end add nothing: 32 zero
    /// bytes are the empty key), and one byte repeated (`/dev/zero` in place of
    /// `/dev/urandom`), of any length.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for either, saying how many bytes (never which).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::FingerprintKey;
    /// let key = FingerprintKey::new(b"an operator's key of 32 bytes...")?;
    /// assert!(FingerprintKey::new(&[0; 32]).is_err()); // HMAC's empty key
    /// assert!(FingerprintKey::new(&[b'x'; 100]).is_err()); // one byte repeated
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn new(material: &[u8]) -> Result<Self> {
        let refuse = |reason: String| Error::InvalidValue {
            field: "fingerprint key".to_owned(),
            reason: format!(
                "{reason}; a fingerprint key holds at least {} random bytes (head -c 32 /dev/urandom makes one)",
                Self::MIN_BYTES
            ),
        };
        // HMAC pads a key of up to a block with zeros: those at its end are no part of it.
        let read = if material.len() > BLOCK {
            material.len()
        } else {
            material.len() - material.iter().rev().take_while(|&&b| b == 0).count()
        };
        if read < Self::MIN_BYTES {
            let padding = match material.len() - read {
                0 => String::new(),
                zeros => format!(" ({zeros} zero bytes at its end, which HMAC reads as padding)"),
            };
            return Err(refuse(format!("holds {read} bytes{padding}",)));
        }
        if material.windows(2).all(|pair| pair[0] == pair[1]) {
            return Err(refuse(format!(
                "holds one byte value repeated {} times",
                material.len()
            )));
        }
        Ok(Self::of(material))
    }

    /// A key of the bytes `material`, of any length, padded to a block as HMAC pads it.
    fn of(material: &[u8]) -> Self {
        let mut block = [0; BLOCK];
        if material.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(material));
        } else {
            block[..material.len()].copy_from_slice(material);
        }
        Self { block }
    }

    /// The keyed fingerprint of secret text, as a report shows a hidden value that is this
    /// text: a string's text as it is, any other value's JSON text (compact, members sorted by
    /// name, as `serde_json` writes a value). Its 16 hex digits are the first 16 of the
    /// HMAC-SHA-256 any tool computes from the same key and text.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::FingerprintKey;
    /// let key = FingerprintKey::new(b"an operator's key of 32 bytes...")?;
    /// let other = FingerprintKey::new(b"another operator's key, 32 bytes")?;
    /// assert_eq!(key.fingerprint("hunter2"), key.fingerprint("hunter2"));
    /// assert_ne!(key.fingerprint("hunter2"), other.fingerprint("hunter2"));
    /// assert!(key.fingerprint("hunter2").to_string().starts_with("hmac-sha256:"));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn fingerprint(&self, secret: &str) -> KeyedFingerprint {
        let mac = self.hmac(secret.as_bytes());
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&mac[..8]);
        KeyedFingerprint(bytes)
    }

    /// HMAC-SHA-256 of `message` under this key (RFC 2104):
    /// `H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ message))`.
    fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let inner = Sha256::new()
            .chain_update(self.block.map(|b| b ^ 0x36))
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(self.block.map(|b| b ^ 0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

/// A one-way identity of a secret under a [`FingerprintKey`]: the first 8 bytes of its
/// HMAC-SHA-256, shown as `hmac-sha256:` and 16 hex digits. Equal secrets have equal keyed
/// fingerprints under one key; without the key a guess cannot be tested against one.
///
/// # Examples
///
/// ```
/// use failback::FingerprintKey;
/// let key = FingerprintKey::new(b"Jefe, with a key of 32 bytes now")?;
/// assert_eq!(key.fingerprint("hunter2").to_string().len(), "hmac-sha256:".len() + 16);
/// assert_eq!(key.fingerprint("hunter2"), key.fingerprint("hunter2"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyedFingerprint([u8; 8]);

impl fmt::Display for KeyedFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hmac-sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyedFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231's test cases 1, 2, 6 and 7: a key shorter than a block, a short printable
    /// one, and two longer than a block (hashed first).
    #[test]
    fn hmac_matches_rfc_4231() {
        let long = [0xaa; 131];
        let cases: [(&[u8], &[u8], &str); 4] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &long,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &long,
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the \
                  HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, message, expected) in cases {
            // `new` refuses "Jefe" (4 bytes); the arithmetic is what the vectors check.
            assert_eq!(hex(&FingerprintKey::of(key).hmac(message)), expected);
        }
    }

    /// Bytes counting up from `first`, wrapping: material with no byte repeated in a row.
    fn counting(first: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| first.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn new_reads_the_key_as_hmac_does() {
        let long = counting(1, 131);
        let key = FingerprintKey::new(&long).expect("long enough");
        let mut block = [0; BLOCK];
        block[..32].copy_from_slice(&Sha256::digest(&long));
        assert_eq!(
            key,
            FingerprintKey { block },
            "hashed, as longer than a block"
        );
        let one_block = counting(1, BLOCK);
        let key = FingerprintKey::new(&one_block).expect("long enough");
        assert_eq!(
            key.block[..],
            one_block[..],
            "a block's length is taken as it is"
        );
        // A key padded with zeros to a block is the same key to HMAC.
        let short = FingerprintKey::new(&counting(1, 16)).expect("long enough");
        let padded = FingerprintKey::new(&[counting(1, 16), vec![0; 16]].concat());
        assert_eq!(Ok(short), padded.map_err(|e| e.to_string()));
    }

    /// A key under 16 bytes as HMAC reads it is refused, saying how many bytes and never
    /// which: fewer given, or zeros at its end (HMAC's padding: 32 zero bytes are the empty
    /// key, and `x` and 15 zeros the key `x`, which anyone can compute with); and one byte
    /// repeated, of any length (found in review 72: `head -c 32 /dev/zero`).
    #[test]
    fn a_key_anyone_can_find_is_refused_without_being_shown() {
        let error = FingerprintKey::new(b"hunter2hunter2!").expect_err("15 bytes");
        let text = error.to_string();
        assert!(text.contains("holds 15 bytes;"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(FingerprintKey::new(b"hunter2hunter2!!").is_ok());

        let text = FingerprintKey::new(&[0; 32])
            .expect_err("empty")
            .to_string();
        assert!(
            text.contains("holds 0 bytes (32 zero bytes at its end"),
            "{text}"
        );
        let x = [&b"x"[..], &[0; 15]].concat();
        let text = FingerprintKey::new(&x).expect_err("one byte").to_string();
        assert!(text.contains("holds 1 bytes (15 zero bytes"), "{text}");
        let fifteen = [&b"hunter2hunter2!"[..], &[0; 40]].concat();
        assert!(FingerprintKey::new(&fifteen).is_err());
        for len in [16, 64, 65, 4096] {
            let text = FingerprintKey::new(&vec![b'x'; len])
                .expect_err("repeated")
                .to_string();
            assert!(
                text.contains(&format!("one byte value repeated {len} times")),
                "{text}"
            );
        }
        // Zeros inside a key, or after one longer than a block (hashed whole), are its own.
        assert!(
            FingerprintKey::new(&[counting(1, 8), vec![0; 8], counting(1, 8)].concat()).is_ok()
        );
        assert!(FingerprintKey::new(&[counting(1, 16), vec![0; 60]].concat()).is_ok());
    }
}

//! The operator's key for fingerprints of secrets people choose.
//!
//! A [`Fingerprint`](crate::Fingerprint) is an unsalted SHA-256 prefix: safe for a symmetric
//! key (16 to 64 random bytes, beyond any search) and unsafe for a password kept in a twin
//! value, which a dictionary of a few thousand guesses finds from it. So a report shows a value
//! hidden as a secret by its fingerprint only where the value is a key's text; any other is
//! shown as `<hidden>`, or, given a [`FingerprintKey`], by its [`KeyedFingerprint`]: an
//! HMAC-SHA-256 under that key, which nobody without the key can test a guess against, and
//! which stays the same from run to run (a random key per run would do the first and break
//! the second: same inputs, byte-identical outputs).
//!
//! HMAC is written here, on the `sha2` the crate already uses, rather than taken from the
//! `hmac` crate: that one's current release needs a newer Rust than this crate's
//! `rust-version`, for ten lines that RFC 4231's test vectors pin below.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::secret::canonical_key_text;

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
    /// The fewest bytes a key may hold: 128 bits, as few as a symmetric key of IoT Hub's.
    pub const MIN_BYTES: usize = 16;

    /// A key of the bytes `material`, at least [`MIN_BYTES`](Self::MIN_BYTES) of them; any
    /// number above that, read as HMAC reads a key (so a fingerprint can be checked with any
    /// HMAC-SHA-256 tool given the same bytes).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for fewer than [`MIN_BYTES`](Self::MIN_BYTES) bytes, saying how
    /// many (never which).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::FingerprintKey;
    /// let long = FingerprintKey::new(&[7; 200])?; // hashed to a block's size, as HMAC does
    /// assert_ne!(long, FingerprintKey::new(&[7; 16])?);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn new(material: &[u8]) -> Result<Self> {
        if material.len() < Self::MIN_BYTES {
            return Err(Error::InvalidValue {
                field: "fingerprint key".to_owned(),
                reason: format!(
                    "holds {} bytes; a fingerprint key holds at least {} random bytes \
                     (head -c 32 /dev/urandom makes one)",
                    material.len(),
                    Self::MIN_BYTES
                ),
            });
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
    /// text: where the whole text is a symmetric key's (padded base64 of 16 to 64 bytes), that
    /// of its canonical spelling, so that every spelling a decoder reads as the same key shows
    /// one fingerprint, as [`SymmetricKey::fingerprint`](crate::SymmetricKey::fingerprint)
    /// does. A value that is not a string is fingerprinted by its JSON text.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::FingerprintKey;
    /// let key = FingerprintKey::new(&[1; 32])?;
    /// let other = FingerprintKey::new(&[2; 32])?;
    /// assert_ne!(key.fingerprint("hunter2"), other.fingerprint("hunter2"));
    /// assert!(key.fingerprint("hunter2").to_string().starts_with("hmac-sha256:"));
    /// // Two spellings of one symmetric key (the bits after the last digit are unused).
    /// let (spelt, otherwise) = ("AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAB==");
    /// assert_eq!(key.fingerprint(spelt), key.fingerprint(otherwise));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn fingerprint(&self, secret: &str) -> KeyedFingerprint {
        let mac = self.hmac(canonical_key_text(secret).as_bytes());
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
/// let key = FingerprintKey::new(&[0x0b; 20])?;
/// // RFC 4231, test case 1: HMAC-SHA-256 of "Hi There", its first 8 bytes.
/// assert_eq!(key.fingerprint("Hi There").to_string(), "hmac-sha256:b0344c61d8db3853");
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

    #[test]
    fn new_reads_the_key_as_hmac_does() {
        let long = [0xaa; 131];
        let key = FingerprintKey::new(&long).expect("long enough");
        let mut block = [0; BLOCK];
        block[..32].copy_from_slice(&Sha256::digest(long));
        assert_eq!(
            key,
            FingerprintKey { block },
            "hashed, as longer than a block"
        );
        let block = FingerprintKey::new(&[0xaa; BLOCK])
            .expect("long enough")
            .block;
        assert_eq!(block, [0xaa; BLOCK], "a block's length is taken as it is");
        // A key padded with zeros to a block is the same key to HMAC.
        let short = FingerprintKey::new(&[9; 16]).expect("long enough");
        let padded = FingerprintKey::new(&[[9; 16], [0; 16]].concat()).expect("long enough");
        assert_eq!(short, padded);
    }

    #[test]
    fn a_short_key_is_refused_without_being_shown() {
        let error = FingerprintKey::new(b"hunter2hunter2!").expect_err("15 bytes");
        let text = error.to_string();
        assert!(text.contains("holds 15 bytes"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(FingerprintKey::new(b"hunter2hunter2!!").is_ok());
    }
}

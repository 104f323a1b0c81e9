//! Shared, immutable text that orders quickly: the representation of device and event ids.
//!
//! Why (2026-11): looking a key up in a registry of a million orders it against a dozen
//! others, and with the text behind a pointer each of those comparisons was a cache miss, about
//! half of a small delta's merge. The first [`PREFIX`] bytes are kept inline as an integer
//! whose order is the text's, so two ids that differ there, or that are no longer, compare
//! without reading their text. Clones share the text (a reference count, no copy).

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// How many leading bytes are kept inline.
const PREFIX: usize = 16;

/// Text with its first [`PREFIX`] bytes inline, zero-padded.
#[derive(Clone)]
pub(crate) struct Text {
    prefix: u128,
    text: Arc<str>,
}

impl Text {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        let mut bytes = [0; PREFIX];
        let n = text.len().min(PREFIX);
        bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
        Self {
            prefix: u128::from_be_bytes(bytes),
            text: Arc::from(text),
        }
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Ordered as the text. Big-endian prefixes compare as their bytes do, and padding (zero)
/// sorts at or before any byte, as the end of a shorter text does. When the prefixes of two
/// texts of at most [`PREFIX`] bytes are equal, the shorter (if any) is the longer's start,
/// padding matching its zero bytes: it comes first, as it would in `str`.
impl Ord for Text {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| {
            let (a, b) = (self.text.len(), other.text.len());
            if a <= PREFIX && b <= PREFIX {
                a.cmp(&b)
            } else if Arc::ptr_eq(&self.text, &other.text) {
                Ordering::Equal
            } else {
                self.text.cmp(&other.text)
            }
        })
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Text {}

/// Hashes the text, as `str` does: equal texts hash alike however they are stored.
impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(crate::property::config())]

        /// Texts order and compare equal exactly as `str` does, whatever their length around
        /// the inline prefix, whether or not they share their text, zero bytes included. A
        /// small alphabet and common starts make long shared beginnings likely.
        #[test]
        fn texts_order_as_str(
            a in "[ab\\x00-]{0,20}",
            b in "[ab\\x00-]{0,20}",
            start in "[ab]{14,17}",
        ) {
            for (a, b) in [(a.clone(), b.clone()), (format!("{start}{a}"), format!("{start}{b}"))] {
                let (x, y) = (Text::from(a.clone()), Text::from(b.clone()));
                proptest::prop_assert_eq!(x.cmp(&y), a.cmp(&b));
                proptest::prop_assert_eq!(x == y, a == b);
                proptest::prop_assert!(x == x.clone() && x == Text::from(a.clone()));
                proptest::prop_assert_eq!(x.as_str(), a.as_str());
            }
        }
    }
}

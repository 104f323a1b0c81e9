//! Fixed-size tuples (a fingerprint's bytes, a version vector's pairs) read whole: every
//! element there, and none left over, whatever the format.
//!
//! serde's readers of arrays and tuples take the elements they need and leave what follows to
//! the format: serde_json refuses an array that was not used up, ciborium does not look. So a
//! retired fingerprint of nine bytes read from CBOR with its ninth dropped, where JSON refused
//! the same tree (found in review): one damaged state, read by one format and refused by the
//! other. These readers refuse it in both, with the same message.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Error as _, Expected, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Reads an array of exactly `N` elements, for a field
/// (`#[serde(deserialize_with = "crate::serde_tuple::array")]`): as serde reads `[T; N]`,
/// but an array holding more is refused.
pub(crate) fn array<'de, D, T, const N: usize>(d: D) -> Result<[T; N], D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + Default,
{
    struct Elements<T, const N: usize>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Copy + Default, const N: usize> Visitor<'de> for Elements<T, N> {
        type Value = [T; N];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an array of {N} elements")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[T; N], A::Error> {
            let mut elements = [T::default(); N];
            for (n, element) in elements.iter_mut().enumerate() {
                *element = next(&mut seq, n, &self)?;
            }
            used_up(seq, N, &self)?;
            Ok(elements)
        }
    }

    d.deserialize_tuple(N, Elements(PhantomData))
}

/// A pair read as serde reads `(A, B)`, but refused when its array holds more than two.
pub(crate) struct Pair<A, B>(pub(crate) A, pub(crate) B);

impl<'de, A: Deserialize<'de>, B: Deserialize<'de>> Deserialize<'de> for Pair<A, B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Elements<A, B>(PhantomData<(A, B)>);

        impl<'de, A: Deserialize<'de>, B: Deserialize<'de>> Visitor<'de> for Elements<A, B> {
            type Value = Pair<A, B>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pair: an array of 2 elements")
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Pair<A, B>, S::Error> {
                let first = next(&mut seq, 0, &self)?;
                let second = next(&mut seq, 1, &self)?;
                used_up(seq, 2, &self)?;
                Ok(Pair(first, second))
            }
        }

        d.deserialize_tuple(2, Elements(PhantomData))
    }
}

/// The element at index `n` of the tuple `expected` describes, refused as of length `n` when
/// `seq` ends before it.
fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    n: usize,
    expected: &dyn Expected,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| A::Error::invalid_length(n, expected))
}

/// Refuses what `seq` holds beyond the `len` elements already taken from it, as of the length
/// it holds in all (read to its end to count them, as serde_json counts them).
fn used_up<'de, A: SeqAccess<'de>>(
    mut seq: A,
    len: usize,
    expected: &dyn Expected,
) -> Result<(), A::Error> {
    let mut held = len;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        held += 1;
    }
    if held == len {
        Ok(())
    } else {
        Err(A::Error::invalid_length(held, expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Result<[u8; 3], String> {
        array(&mut serde_json::Deserializer::from_str(text)).map_err(|e| e.to_string())
    }

    fn pair(text: &str) -> Result<(u8, bool), String> {
        serde_json::from_str::<Pair<u8, bool>>(text)
            .map(|Pair(a, b)| (a, b))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_array_of_exactly_its_length_reads_and_no_other() {
        assert_eq!(bytes("[1,2,3]"), Ok([1, 2, 3]));
        assert_eq!(
            bytes("[1,2]"),
            Err("invalid length 2, expected an array of 3 elements at line 1 column 5".into())
        );
        assert_eq!(
            bytes("[1,2,3,4,5]"),
            Err("invalid length 5, expected an array of 3 elements at line 1 column 11".into())
        );
    }

    /// CBOR's reader leaves an array's end to the visitor: the one format where a leftover
    /// was dropped.
    #[test]
    fn cbor_refuses_a_leftover_as_json_does() {
        let cbor = |value: &serde_json::Value| {
            let mut buffer = Vec::new();
            ciborium::into_writer(value, &mut buffer).expect("writes");
            buffer
        };
        #[derive(Deserialize)]
        struct Three(#[serde(deserialize_with = "array")] [u8; 3]);
        let four = cbor(&serde_json::json!([1, 2, 3, 4]));
        let read: Result<Three, _> = ciborium::from_reader(&four[..]);
        assert!(read.is_err_and(|e| e.to_string().contains("invalid length 4")));
        let three = cbor(&serde_json::json!([1, 2, 3]));
        let read: Result<Three, _> = ciborium::from_reader(&three[..]);
        assert!(read.is_ok_and(|Three(bytes)| bytes == [1, 2, 3]));
        let pair_and_more = cbor(&serde_json::json!([1, true, 3]));
        let read: Result<Pair<u8, bool>, _> = ciborium::from_reader(&pair_and_more[..]);
        assert!(read.is_err_and(|e| e.to_string().contains("invalid length 3")));
        let two = cbor(&serde_json::json!([1, true]));
        let read: Result<Pair<u8, bool>, _> = ciborium::from_reader(&two[..]);
        assert!(read.is_ok_and(|Pair(a, b)| a == 1 && b));
    }

    #[test]
    fn a_pair_of_exactly_two_reads_and_no_other() {
        assert_eq!(pair("[7,true]"), Ok((7, true)));
        assert!(pair("[7]").is_err_and(|e| e.starts_with("invalid length 1, expected a pair")));
        assert!(
            pair("[7,true,8]").is_err_and(|e| e.starts_with("invalid length 3, expected a pair"))
        );
    }
}

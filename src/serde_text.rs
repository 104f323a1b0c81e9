//! Serde for the types written as one string: their text out, their checking constructor in;
//! and for the types whose text may hold keys, a reader that does not show them.

/// Implements `Serialize` as the string `$text(self)` and `Deserialize` as a string passed
/// through `$from` (without it: the type's `FromStr`), whose error (any `Display`) becomes the
/// deserializer's error.
///
/// One macro rather than a pair of impls per type: the pairs of the types written as text
/// differed only in which accessor gives the text and which constructor checks it.
macro_rules! serde_as_text {
    ($ty:ty, $text:expr) => {
        serde_as_text!($ty, $text, |raw: String| raw.parse::<$ty>());
    };
    ($ty:ty, $text:expr, $from:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let text: fn(&$ty) -> &str = $text;
                s.serialize_str(text(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let raw = <String as serde::Deserialize>::deserialize(d)?;
                ($from)(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_as_text;

/// For a type deriving serde with `#[serde(remote = "Self")]` (the derived code as inherent
/// functions): `Serialize` as derived, and `Deserialize` as derived with serde's quotes of
/// strings that could be keys hidden (`crate::error::redacted`). serde's messages quote the
/// value found where another belongs, so a key one level off in a damaged text (a record's,
/// an identity's, a device's, a report's) would be shown whole by the error. `Name<T>` for a
/// type generic in its value (a register's entry).
macro_rules! serde_redacting {
    ($ty:ident<$t:ident>) => {
        impl<$t: serde::Serialize> serde::Serialize for $ty<$t> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                <$ty<$t>>::serialize(self, s)
            }
        }

        impl<'de, $t: serde::Deserialize<'de>> serde::Deserialize<'de> for $ty<$t> {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                <$ty<$t>>::deserialize(d).map_err(crate::error::redacted)
            }
        }
    };
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                <$ty>::serialize(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                <$ty>::deserialize(d).map_err(crate::error::redacted)
            }
        }
    };
}

pub(crate) use serde_redacting;

/// Reads a member as its type reads it: for a member the writer always writes, named in
/// `deserialize_with` so that the member is required. serde's derive reads a missing `Option`
/// member as `None`, and a field read through a function has no default unless given one, so
/// through this one a missing member is refused as missing. Where a writer wrote a member
/// every time, its absence is damage (a cut, a misspelt name), not a value: read as `None`, a
/// register entry's `value` would be a removal and credentials' `keys` unknown, under the dot
/// the peers hold with another value, which no merge ever settles. A generic struct reading
/// one states `T: Deserialize<'de>` in `bound`: the derive infers no bound for a field read
/// through a function.
pub(crate) fn required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer)
}

/// Reads a map as its members in the order the text lists them, every one kept: serde's maps
/// keep the last of a name listed twice, so a reader refusing the pair must see both.
pub(crate) fn map_members<'de, D, K, V>(deserializer: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: serde::Deserialize<'de>,
    V: serde::Deserialize<'de>,
{
    struct Members<K, V>(std::marker::PhantomData<(K, V)>);

    impl<'de, K, V> serde::de::Visitor<'de> for Members<K, V>
    where
        K: serde::Deserialize<'de>,
        V: serde::Deserialize<'de>,
    {
        type Value = Vec<(K, V)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            // The hint is the text's word, so it only starts the list.
            let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
            while let Some(member) = map.next_entry()? {
                members.push(member);
            }
            Ok(members)
        }
    }

    deserializer.deserialize_map(Members(std::marker::PhantomData))
}

/// `members` sorted by name, or `Err` with a name listed twice: one sort, then one look at
/// each neighbour (none at all for members already in order, as a writer lists them).
pub(crate) fn sorted_once_each<K: Ord, V>(mut members: Vec<(K, V)>) -> Result<Vec<(K, V)>, K> {
    if !members.is_sorted_by(|a, b| a.0 < b.0) {
        members.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(at) = members.windows(2).position(|pair| pair[0].0 == pair[1].0) {
            return Err(members.swap_remove(at).0);
        }
    }
    Ok(members)
}

//! Reading a device's records so that a refusal raised inside them names the device, and is
//! placed where it was raised.
//!
//! A record is read without its key, so its refusals do not name the device; the device's
//! reader names them. Named once they came out of the records, they had lost their place:
//! serde_json places an error raised without a position at the point it has read to when the
//! error leaves one of its `deserialize_*` calls, and each call an error leaves has read its
//! closing bracket first, so a refusal inside a device's records, named by the device's reader,
//! was placed past them (found in review: line 138 of a pretty text where the record that was
//! refused ends at line 133). Named at the first level it leaves, inside the call that raised
//! it, before serde_json places it, it is placed where it would be unnamed: hence a reader that
//! wraps every level of the records, [`Named`].
//!
//! serde_json's own refusals of the text are placed as they are raised, and an error named
//! anew is one without a position: those are left unnamed, where they stand. CBOR's reader
//! places nothing, so there every refusal is named. A refusal is named once, at the first
//! level: the levels above see that one passed (a reader inside the records that recovered
//! from a refusal, as none does, would leave the next one unnamed, not misplaced).

use std::cell::Cell;
use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::without_position;
use crate::key::DeviceKey;

/// Names the refusals raised inside the records of the device `key`.
#[derive(Clone, Copy)]
pub(super) struct Naming<'a> {
    key: &'a DeviceKey,
    /// Whether a refusal passed a level already: it leaves every level on its way out and is
    /// named, or left as it is, at the first.
    seen: &'a Cell<bool>,
}

impl<'a> Naming<'a> {
    /// Names what a reading of `key`'s records refuses; `seen` starts false for each reading.
    pub(super) fn new(key: &'a DeviceKey, seen: &'a Cell<bool>) -> Self {
        Self { key, seen }
    }

    /// `err`, raised by a reader's code (a visitor, a `Deserialize`), as the refusal of the
    /// device, at the first level it leaves: before serde_json has placed it, so that it is
    /// placed where it would be unnamed.
    fn name<E: Error>(self, err: E) -> E {
        if self.seen.replace(true) {
            return err;
        }
        E::custom(format_args!("device {}: {err}", self.key))
    }

    /// `err`, out of a format's `deserialize_*`: named as [`Naming::name`] names it, unless it
    /// is the format's own refusal and has its position already (serde_json's refusal of the
    /// text: a token out of place, a string where a number belongs), which is left as it is.
    /// Named anew, it would lose its position, and serde_json would place it where the level
    /// it leaves next has read to. A refusal a visitor below raised has passed a level already.
    fn name_unless_placed<E: Error>(self, err: E) -> E {
        if self.seen.get() {
            return err;
        }
        let message = err.to_string();
        if without_position(&message).len() < message.len() {
            self.seen.set(true);
            return err;
        }
        self.name(err)
    }
}

/// A reader `inner` (a seed, a deserializer, a visitor, an access to a sequence, map or enum)
/// whose every level below is wrapped alike, so that a refusal raised at any depth is named
/// by `naming` at the first level it leaves.
pub(super) struct Named<'a, T> {
    inner: T,
    naming: Naming<'a>,
}

impl<'a, T> Named<'a, T> {
    pub(super) fn new(inner: T, naming: Naming<'a>) -> Self {
        Self { inner, naming }
    }

    fn wrap<U>(&self, inner: U) -> Named<'a, U> {
        Named::new(inner, self.naming)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Named<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let naming = self.naming;
        let d = self.wrap(d);
        self.inner.deserialize(d).map_err(|err| naming.name(err))
    }
}

/// Forwards each `deserialize_*` of a [`Deserializer`], its visitor wrapped, naming the
/// format's refusal.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                let (naming, visitor) = (self.naming, self.wrap(visitor));
                self.inner
                    .$method($($arg,)* visitor)
                    .map_err(|err| naming.name_unless_placed(err))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Named<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    /// Forwarded: a reader may read a value otherwise in a format for people (a UUID as text).
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards each `visit_*` of a [`Visitor`] taking a value, naming its refusal.
macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: Error>(self, value: $ty) -> Result<V::Value, E> {
                let naming = self.naming;
                self.inner.$method(value).map_err(|err| naming.name(err))
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Named<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: Error>(self) -> Result<V::Value, E> {
        let naming = self.naming;
        self.inner.visit_none().map_err(|err| naming.name(err))
    }

    fn visit_unit<E: Error>(self) -> Result<V::Value, E> {
        let naming = self.naming;
        self.inner.visit_unit().map_err(|err| naming.name(err))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let (naming, d) = (self.naming, self.wrap(d));
        self.inner.visit_some(d).map_err(|err| naming.name(err))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let (naming, d) = (self.naming, self.wrap(d));
        self.inner
            .visit_newtype_struct(d)
            .map_err(|err| naming.name(err))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let (naming, seq) = (self.naming, self.wrap(seq));
        self.inner.visit_seq(seq).map_err(|err| naming.name(err))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let (naming, map) = (self.naming, self.wrap(map));
        self.inner.visit_map(map).map_err(|err| naming.name(err))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let (naming, data) = (self.naming, self.wrap(data));
        self.inner.visit_enum(data).map_err(|err| naming.name(err))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Named<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Named<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Named<'a, A> {
    type Error = A::Error;
    type Variant = Named<'a, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (naming, seed) = (self.naming, self.wrap(seed));
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((value, Named::new(variant, naming)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Named<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

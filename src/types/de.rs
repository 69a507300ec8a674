//! The serde toolkit the request types are read with: objects told apart by their `type`
//! member, read in one pass ([`Tagged`]); lenient scalars (`LooseStr`, `LooseString`,
//! `ImageUrlField`) that read a value of the wrong JSON type as `None` rather than failing;
//! and [`Present`], which tells an absent member from `null`.

use std::borrow::Cow;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A visitor's `visit_unit`/`bool`/`i64`/`u64`/`f64`: the scalar as a `Value` bound to the
/// given name, then the given expression.
macro_rules! scalars_to {
    ($ret:ty, |$v:ident| $body:expr) => {
        fn visit_unit<E: serde::de::Error>(self) -> Result<$ret, E> {
            let $v = ::serde_json::Value::Null;
            $body
        }
        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<$ret, E> {
            let $v = ::serde_json::Value::Bool(b);
            $body
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<$ret, E> {
            let $v = ::serde_json::Value::from(n);
            $body
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<$ret, E> {
            let $v = ::serde_json::Value::from(n);
            $body
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<$ret, E> {
            let $v = ::serde_json::Value::from(n);
            $body
        }
    };
}
pub(super) use scalars_to;

/// An object told apart by its `type` member (items, content parts). Read in one pass when
/// `type` is the first member, as Codex and the SDKs write it: the rest of the members go
/// straight into the struct of that type. Otherwise the members are collected as raw JSON
/// (borrowed from the body, not parsed into a tree), `type` found among them, and the rest
/// read the same way.
pub(super) trait Tagged<'de>: Sized {
    /// The members after `type` (`None`: no string `type`).
    fn typed<A: MapAccess<'de>>(ty: Option<&str>, rest: A) -> Result<Self, A::Error>;
    /// The type an object without a string `type` member is read as (`None`: none).
    fn implied(members: &[(String, &'de RawValue)]) -> Option<&'static str>;
    /// A value that is not an object.
    fn other(value: Value) -> Self;
}

pub(super) fn deserialize_tagged<'de, T: Tagged<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<T, D::Error> {
    d.deserialize_any(TaggedVisitor(std::marker::PhantomData))
}

struct TaggedVisitor<T>(std::marker::PhantomData<T>);

/// A member name: `type` or another.
enum Key {
    Type,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(if s == "type" {
                    Key::Type
                } else {
                    Key::Other(s.to_owned())
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de, T: Tagged<'de>> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut members: Vec<(String, &'de RawValue)> = Vec::new();
        let mut ty = None;
        match map.next_key::<Key>()? {
            Some(Key::Type) => {
                let ty: LooseStr<'de> = map.next_value()?;
                return T::typed(ty.0.as_deref(), map);
            }
            Some(Key::Other(k)) => members.push((k, map.next_value()?)),
            None => {}
        }
        while let Some(k) = map.next_key::<Key>()? {
            match k {
                Key::Type => ty = Some(map.next_value::<LooseStr<'de>>()?),
                Key::Other(k) => members.push((k, map.next_value()?)),
            }
        }
        let ty = ty.and_then(|t| t.0);
        let ty = ty.as_deref().or_else(|| T::implied(&members));
        let rest = serde::de::value::MapDeserializer::new(members.into_iter());
        T::typed::<_>(ty, rest).map_err(|e: serde_json::Error| A::Error::custom(e))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(T::other(v))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        Ok(T::other(Value::String(s.to_owned())))
    }
    scalars_to!(T, |v| Ok(T::other(v)));
}

/// Read the rest of an object into `T` (a struct without a `type` field).
pub(super) fn rest_as<'de, T: Deserialize<'de>, A: MapAccess<'de>>(rest: A) -> Result<T, A::Error> {
    T::deserialize(MapAccessDeserializer::new(rest))
}

/// Skip the rest of an object.
pub(super) fn skip_rest<'de, A: MapAccess<'de>>(mut rest: A) -> Result<(), A::Error> {
    while rest.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A string, or `None` for any other JSON value (a `type` that is not a string).
pub(super) struct LooseStr<'a>(pub(super) Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LooseStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(s))))
            }
            scalars_to!(Self::Value, |_v| Ok(LooseStr(None)));
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string, or `None` for any other value (owned).
pub(super) struct LooseString(pub(super) Option<String>);

impl<'de> Deserialize<'de> for LooseString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LooseStr::deserialize(d).map(|l| LooseString(l.0.map(Cow::into_owned)))
    }
}

/// `image_url`: a URL string or `{"url": ...}`; `None` for anything else.
pub(super) struct ImageUrlField(pub(super) Option<String>);

impl<'de> Deserialize<'de> for ImageUrlField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct UrlObject {
            #[serde(default)]
            url: Option<LooseString>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImageUrlField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL or {\"url\": ...}")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ImageUrlField, E> {
                Ok(ImageUrlField(Some(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<ImageUrlField, E> {
                Ok(ImageUrlField(Some(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ImageUrlField, A::Error> {
                let o: UrlObject = rest_as(map)?;
                Ok(ImageUrlField(o.url.and_then(|l| l.0)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ImageUrlField, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ImageUrlField(None))
            }
            scalars_to!(ImageUrlField, |_v| Ok(ImageUrlField(None)));
        }
        d.deserialize_any(V)
    }
}

/// A member that may be absent (`Present(None)`), unlike `Option`, which reads `null` and
/// absence alike.
#[derive(Debug)]
pub(super) struct Present<T>(pub(super) Option<T>);

impl<T> Default for Present<T> {
    fn default() -> Self {
        Present(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|v| Present(Some(v)))
    }
}

//! serde helpers: borrowed strings, optional ids, null-tolerant fields.

#[allow(unused_imports)]
use super::*;

pub(super) fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// Visitor producing a `Cow<str>` that borrows from the input when the deserializer can lend it
/// (serde's `Cow` impl always allocates). With `numbers`, JSON integers are accepted too.
pub(super) struct CowStrVisitor {
    numbers: bool,
}

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.numbers {
            "a string or an integer"
        } else {
            "a string"
        })
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Cow::Owned(v.to_string()))
        } else {
            Err(E::invalid_type(de::Unexpected::Unsigned(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Cow::Owned(v.to_string()))
        } else {
            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
        }
    }
}

/// `Option` visitor wrapping [`CowStrVisitor`] (`null` → `None`).
pub(super) struct OptCowVisitor {
    numbers: bool,
}

impl<'de> Visitor<'de> for OptCowVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let v = CowStrVisitor {
            numbers: self.numbers,
        };
        if self.numbers {
            d.deserialize_any(v).map(Some)
        } else {
            d.deserialize_str(v).map(Some)
        }
    }
}

/// Optional string that borrows from the input when possible.
pub(super) fn opt_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_option(OptCowVisitor { numbers: false })
}

/// Optional id: a string (borrowed when possible) or an integer.
pub(super) fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_option(OptCowVisitor { numbers: true })
}

/// [`opt_cow`] as a type, for `next_value`.
pub(super) struct OptCow<'a>(pub(super) Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptCow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_cow(d).map(OptCow)
    }
}

/// A bool where `null` means `false`.
pub(super) fn bool_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// A list where `null` means empty.
pub(super) fn words_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Word<'de>>, D::Error> {
    Ok(Option::<Vec<Word<'de>>>::deserialize(d)?.unwrap_or_default())
}

/// `sentimentAnalysisResult` object (only `sentiment` is kept).
#[derive(serde::Deserialize)]
pub(super) struct SentimentWire<'a> {
    #[serde(default, borrow, alias = "Sentiment", deserialize_with = "opt_cow")]
    sentiment: Option<Cow<'a, str>>,
}

/// `sentimentAnalysisResult.sentiment`, with a `null` object meaning `None`.
pub(super) fn sentiment<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<SentimentWire<'de>>::deserialize(d)?.and_then(|s| s.sentiment))
}

/// Writes `Some(sentiment)` back as `{"sentiment":…}`.
pub(super) fn ser_sentiment<S: Serializer>(
    v: &Option<Cow<'_, str>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut st = s.serialize_struct("SentimentAnalysisResult", 1)?;
    st.serialize_field("sentiment", v)?;
    st.end()
}

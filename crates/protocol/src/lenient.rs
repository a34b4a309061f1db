//! Field access that tolerates KooGallery's variations: numbers where strings are documented (and the
//! reverse), missing optional fields, and fields added in newer editions.

use serde_json::{Map, Value};

use crate::ids::{Id, IdKind};
use crate::messages::MessageError;

pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(value: &'a Value) -> Result<Self, MessageError> {
        value.as_object().map(|map| Self { map }).ok_or(MessageError::NotAnObject)
    }

    /// The field as text: strings as they are, numbers and booleans in their JSON spelling; `null` and
    /// absent fields are `None`; objects and arrays are an error.
    fn text(&self, name: &'static str) -> Result<Option<String>, MessageError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(MessageError::invalid(name, "must be a string")),
        }
    }

    /// A text field that may be absent; an empty string counts as absent.
    pub(crate) fn optional(&self, name: &'static str, max: usize) -> Result<Option<String>, MessageError> {
        match self.text(name)? {
            Some(s) if s.is_empty() => Ok(None),
            Some(s) if s.chars().count() > max => {
                Err(MessageError::invalid(name, "is longer than the documented maximum"))
            }
            other => Ok(other),
        }
    }

    pub(crate) fn required(&self, name: &'static str, max: usize) -> Result<String, MessageError> {
        self.optional(name, max)?.ok_or(MessageError::MissingField(name))
    }

    pub(crate) fn id<K: IdKind>(&self, name: &'static str) -> Result<Id<K>, MessageError> {
        let text = self.required(name, K::MAX_LEN)?;
        Id::parse(&text).map_err(|e| MessageError::invalid(name, e.to_string()))
    }

    pub(crate) fn optional_id<K: IdKind>(&self, name: &'static str) -> Result<Option<Id<K>>, MessageError> {
        match self.optional(name, K::MAX_LEN)? {
            Some(text) => Id::parse(&text).map(Some).map_err(|e| MessageError::invalid(name, e.to_string())),
            None => Ok(None),
        }
    }

    /// `testFlag`: exactly `1` (string or number) marks a debug call; absent, empty or `0` is a real one
    /// (spec §5.2).
    pub(crate) fn test_flag(&self) -> Result<bool, MessageError> {
        Ok(self.optional("testFlag", 2)?.as_deref() == Some("1"))
    }

    pub(crate) fn object(&self, name: &'static str) -> Result<Fields<'a>, MessageError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Err(MessageError::MissingField(name)),
            Some(value) => Fields::new(value).map_err(|_| MessageError::invalid(name, "must be an object")),
        }
    }

    /// An integer given as a JSON number or as a decimal string.
    pub(crate) fn optional_integer(&self, name: &'static str) -> Result<Option<i64>, MessageError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| MessageError::invalid(name, "must be an integer"))
            }
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| MessageError::invalid(name, "must be an integer"))
            }
            Some(_) => Err(MessageError::invalid(name, "must be an integer")),
        }
    }
}

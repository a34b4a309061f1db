//! Newtypes for KooGallery identifiers, each checked against the spec's maximum length when parsed.

use std::marker::PhantomData;

use serde::Serialize;

/// An identifier was empty, too long or contained control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be 1 to {max} characters without control characters")]
pub struct InvalidId {
    pub kind: &'static str,
    pub max: usize,
}

fn check(kind: &'static str, max: usize, value: &str) -> Result<(), InvalidId> {
    let ok = !value.is_empty() && value.chars().count() <= max && !value.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(InvalidId { kind, max })
    }
}

/// What distinguishes one kind of identifier from another: its name in messages and its maximum length.
pub trait IdKind {
    const NAME: &'static str;
    const MAX_LEN: usize;
}

/// A checked KooGallery identifier of kind `K`. One generic type instead of one hand-written type per
/// kind keeps the parsing rule in one place while the kinds stay distinct to the compiler.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Id<K> {
    value: String,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

impl<K: IdKind> Id<K> {
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        check(K::NAME, K::MAX_LEN, value)?;
        Ok(Self { value: value.to_owned(), kind: PhantomData })
    }
}

impl<K> Id<K> {
    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn into_string(self) -> String {
        self.value
    }
}

// Derives would demand `K: Clone` etc. of the marker types; these impls only look at the value.
impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), kind: PhantomData }
    }
}
impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<K> Eq for Id<K> {}
impl<K> std::hash::Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}
impl<K: IdKind> std::fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:?})", K::NAME, self.value)
    }
}
impl<K> std::fmt::Display for Id<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)
    }
}

/// Marker for [`InstanceId`].
pub enum InstanceKind {}
impl IdKind for InstanceKind {
    const NAME: &'static str = "instanceId";
    const MAX_LEN: usize = 64;
}
/// The merchant-assigned instance id (the first `businessId` of an order line), at most 64 characters.
pub type InstanceId = Id<InstanceKind>;

/// Marker for [`OrderId`].
pub enum OrderKind {}
impl IdKind for OrderKind {
    const NAME: &'static str = "orderId";
    const MAX_LEN: usize = 64;
}
/// A KooGallery order id, at most 64 characters.
pub type OrderId = Id<OrderKind>;

/// Marker for [`OrderLineId`].
pub enum OrderLineKind {}
impl IdKind for OrderLineKind {
    const NAME: &'static str = "orderLineId";
    const MAX_LEN: usize = 64;
}
/// A KooGallery order line id, at most 64 characters.
pub type OrderLineId = Id<OrderLineKind>;

/// Marker for [`BusinessId`].
pub enum BusinessKind {}
impl IdKind for BusinessKind {
    const NAME: &'static str = "businessId";
    const MAX_LEN: usize = 64;
}
/// KooGallery's per-request business id, at most 64 characters; new on every retry.
pub type BusinessId = Id<BusinessKind>;

/// Marker for [`ProductId`].
pub enum ProductKind {}
impl IdKind for ProductKind {
    const NAME: &'static str = "productId";
    const MAX_LEN: usize = 64;
}
/// A KooGallery product id, at most 64 characters.
pub type ProductId = Id<ProductKind>;

/// The per-call random `nonce`. KooGallery sends 16–64 alphanumerics; anything printable up to 128 ASCII
/// characters is accepted so a format change on their side does not lock merchants out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);

impl Nonce {
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        let ok =
            !value.is_empty() && value.len() <= Self::MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidId { kind: "nonce", max: Self::MAX_LEN })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_counted_in_characters() {
        assert!(InstanceId::parse(&"中".repeat(64)).is_ok());
        assert!(InstanceId::parse(&"a".repeat(65)).is_err());
        assert!(InstanceId::parse("").is_err());
        assert!(OrderId::parse("a\nb").is_err());
    }

    #[test]
    fn nonces_are_printable_ascii() {
        assert!(Nonce::parse("RLLUammMSInlrNWb").is_ok());
        assert!(Nonce::parse("has space").is_err());
        assert!(Nonce::parse(&"a".repeat(129)).is_err());
    }
}

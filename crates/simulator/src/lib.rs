//! A faithful stand-in for KooGallery. For now: a sender that signs and fires SaaS V2.0 callbacks (well
//! formed or deliberately broken) at any production URL and reads the answers back, and a load generator
//! built on it; a mock of KooGallery's Open API host (Query Order) with fault injection; and a mock of
//! the merchant's app that receives and verifies koogate's webhooks.
//!
//! It depends on `protocol` only, never on `server`: it tests the wire contract, not koogate's insides.

pub mod app_receiver;
pub mod conformance;
pub mod koogallery;
pub mod load;
pub mod marketplace;
mod mock_orders;
mod sender;

pub use mock_orders::mock_orders;
pub use sender::{random_nonce, CallbackReply, CallbackSender, SendError, SignedUrl, Tamper, TimeSource};

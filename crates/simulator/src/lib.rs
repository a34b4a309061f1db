//! A faithful stand-in for KooGallery. For now: a sender that signs and fires SaaS V2.0 callbacks (well
//! formed or deliberately broken) at any production URL and reads the answers back, and a load generator
//! built on it.
//!
//! It depends on `protocol` only, never on `server`: it tests the wire contract, not koogate's insides.

pub mod load;
mod sender;

pub use sender::{random_nonce, CallbackReply, CallbackSender, SendError, SignedUrl, Tamper, TimeSource};

//! A faithful stand-in for KooGallery. For now: a sender that signs and fires SaaS V2.0 callbacks (well
//! formed or deliberately broken) at any production URL and reads the answers back, and a load generator
//! built on it; and a mock of KooGallery's Open API host (Query Order) with fault injection.
//!
//! It depends on `protocol` only, never on `server`: it tests the wire contract, not koogate's insides.

pub mod load;
pub mod marketplace;
mod mock_orders;
mod sender;

pub use mock_orders::mock_orders;
pub use sender::{random_nonce, CallbackReply, CallbackSender, SendError, SignedUrl, Tamper, TimeSource};

//! Every KooGallery wire format and signature scheme koogate speaks, as pure functions.
//!
//! This crate does no I/O, reads no clock and knows no HTTP status codes: the current time is always an
//! argument. The server, the simulator and the CLI all call these functions, so each scheme has exactly
//! one implementation, pinned by the golden vectors in `tests/suite/vectors.rs`.

pub mod apig;
pub mod body_sign;
pub mod canonical;
pub mod datetime;
pub mod ids;
pub mod json;
pub mod key;
mod lenient;
pub mod messages;
pub mod open_api;
pub mod result_code;
pub mod signature;
pub mod usage;
pub mod webhook;

pub use key::AccessKey;
pub use messages::{CallbackResponse, Request};
pub use result_code::ResultCode;
pub use signature::{SignatureParams, Verified, VerifiedBody, VerifyError};

//! The protocol crate's integration tests, in one binary: the specification's golden vectors, the
//! cross-check against Huawei's official Python signer, and signature properties.

mod apig_crosscheck;
mod properties;
mod vectors;

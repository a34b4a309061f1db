//! The protocol crate's integration tests, in one binary: the specification's golden vectors and the
//! cross-check against Huawei's official Python signer.

mod apig_crosscheck;
mod vectors;

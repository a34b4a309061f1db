//! Integration tests: the real server on port 0 with a fresh database, driven over HTTP by the
//! simulator's callback sender. One binary for the whole suite. The database is SQLite unless
//! `KOOGATE_TEST_BACKEND=postgres`.

mod harness;

mod app_integration;
mod conformance;
mod health;
mod lifecycle;
mod metering;
mod orders;
mod outage;
mod provisioning;
mod query;
mod refusals;
mod replicas;
mod resilience;
mod testflag;

//! koogate's server: the axum routes, the services behind them, background workers, configuration and
//! the clock. Handlers only ever see requests the protocol crate has verified.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod events;
pub mod http;
pub mod jobs;
pub mod marketplace;
pub mod order_fetch;
pub mod provision;
pub mod provisioning;
pub mod saas;
pub mod usage;
pub mod workers;

pub use app::{bind, open_store, serve, App, StartError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;

//! koogate's durable state over SQLite or PostgreSQL behind one interface.
//!
//! The same SQL text serves both backends wherever the dialects agree (numbered `$n` parameters,
//! `ON CONFLICT`, `RETURNING`); only the migrations are per backend. Idempotency is enforced by unique
//! keys, never by read-then-insert. The store knows no HTTP and holds no business rules beyond integrity.

#[macro_use]
mod dispatch;

mod backend;
mod batch;
mod error;
mod jobs;
mod maintenance;
mod model;
mod orders;
mod outbox;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod tx;
mod usage;

pub use backend::{Backend, DatabaseUrl, PoolSettings, Store};
pub use batch::WriteFuture;
pub use error::StoreError;
pub use jobs::{Job, NewJob};
pub use model::{
    CallbackQuery, CallbackRecord, Change, Instance, InstanceQuery, InstanceStatus, NewInstanceRecord,
    StoredAppInfo,
};
pub use orders::OrderRecord;
pub use outbox::{Delivery, DeliveryQuery, NewEvent};
pub use tokens::ApiToken;
pub use tx::Tx;
pub use usage::{PackageUsage, UsageEvent, UsageLedgerRecord, UsageOverview, UsagePush};

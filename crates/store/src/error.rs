//! The store's error type, with database failures classified by kind rather than by message text.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time: the caller should refuse the work
    /// with a retryable answer, never pretend it succeeded.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database answered with an error.
    #[error("the database refused the operation")]
    Database(#[source] sqlx::Error),
    #[error("applying migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// `Store::write` was called from inside a write unit, which would wait for itself.
    #[error("Store::write was called from inside a write unit")]
    NestedWrite,
    /// A stored value no longer parses (for example an id edited by hand).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            StoreError::Unavailable(error)
        } else {
            StoreError::Database(error)
        }
    }
}

impl StoreError {
    /// True when retrying later may succeed (connection lost, pool exhausted, database busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) and their extended codes.
            // PostgreSQL: class 08 (connection exception), 57P01-57P03 (admin shutdown, crash,
            // cannot connect now) and 53300 (too many connections).
            let code = db.code().unwrap_or_default();
            let code = code.as_ref();
            // SQLSTATEs always have five characters; SQLite's numeric codes never do.
            let sqlite_busy = code.len() < 5 && code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            sqlite_busy || code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }
        _ => false,
    }
}

//! Opening the database named by a URL: SQLite (embedded, the default) or PostgreSQL (several replicas).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::batch::{GroupCommit, WriteFuture};
use crate::error::StoreError;
use crate::tx::Tx;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL that has been checked strictly: a typo in the scheme is an error, never a silently
/// created SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    url: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::InvalidUrl(format!(
                "{:?} is not a database URL: use sqlite://PATH (for example sqlite://koogate.db) or \
                 postgres://USER@HOST:PORT/DATABASE",
                redact_url(url)
            )));
        };
        Ok(Self { backend, url: url.to_owned() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", redact_url(&self.url))
    }
}

/// The URL with any password replaced, fit for logs and error messages: the part between the last `:`
/// and the `@` of the authority (whatever the scheme looks like, typos included) and any `password=`
/// query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = match url.rfind('@') {
        Some(at) => {
            let before = &url[..at];
            let scheme_end = before.find("://").map(|i| i + 3).unwrap_or(0);
            match before[scheme_end..].rfind(':') {
                Some(colon) => format!("{}:[REDACTED]{}", &before[..scheme_end + colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    if let Some(start) = out.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..].find('&').map(|i| value_start + i).unwrap_or(out.len());
        out.replace_range(value_start..value_end, "[REDACTED]");
    }
    out
}

/// Connection-pool sizing and timeouts. The defaults suit one replica; see the README for N replicas.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections per replica (PostgreSQL) or reader connections (SQLite, which always has one writer).
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered with a retryable failure.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another process.
    pub busy_timeout: Duration,
    /// PostgreSQL `statement_timeout`: a stuck statement fails instead of holding a callback forever.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pools {
    /// SQLite allows one writer at a time; a single-connection writer pool queues writers in the
    /// process instead of letting them spin on `SQLITE_BUSY`, and readers use their own pool.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// The handle every other crate uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pools: Pools,
    /// SQLite's writer task, which commits concurrent write units together (see `batch.rs`).
    group: Option<GroupCommit>,
}

impl Store {
    /// Opens (and for SQLite creates) the database. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, StoreError> {
        let (pools, group) = match url.backend() {
            Backend::Sqlite => {
                let pools = connect_sqlite(url.as_str(), settings).await?;
                (pools.clone(), Some(GroupCommit::start(pools)))
            }
            // PostgreSQL already shares one WAL flush among transactions committing at the same
            // time, and it has many writers: each unit takes its own transaction.
            Backend::Postgres => (connect_postgres(url.as_str(), settings).await?, None),
        };
        Ok(Self { pools, group })
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend. Safe to run from several replicas at once:
    /// sqlx takes a database lock while migrating.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
            Pools::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// The migration versions embedded for a backend (both backends must list the same ones).
    pub fn migration_versions(backend: Backend) -> Vec<i64> {
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).collect()
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Tx::begin(&self.pools).await
    }

    /// Runs `work` in a write transaction and returns its value once that transaction has committed.
    ///
    /// On SQLite, units submitted concurrently share one transaction and one sync (group commit). A
    /// unit may therefore run more than once (when another unit of its batch fails, the batch is
    /// rolled back and each unit runs again alone), so it must have no effect outside the transaction
    /// that a second run would repeat harmfully. A panic in `work` is raised again in the caller. If the
    /// caller stops waiting (its future is dropped), nothing of its unit is committed, batched or not.
    /// Calling `write` from inside a unit is refused with [`StoreError::NestedWrite`].
    pub async fn write<F, T>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'t> Fn(&'t mut Tx) -> WriteFuture<'t, T> + Send + Sync + 'static,
        T: Send + 'static,
    {
        if let Some(group) = &self.group {
            return group.submit(work).await;
        }
        let mut tx = self.begin().await?;
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Succeeds when the database answers a trivial query (and, on SQLite, the writer task that
    /// commits callbacks is running).
    pub async fn ping(&self) -> Result<(), StoreError> {
        if self.group.as_ref().is_some_and(|group| !group.is_running()) {
            return Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed));
        }
        match &self.pools {
            Pools::Sqlite { writer, .. } => sqlx::query("SELECT 1").execute(writer).await.map(|_| ())?,
            Pools::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        };
        Ok(())
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { writer, reader } => {
                writer.close().await;
                reader.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

async fn connect_sqlite(url: &str, settings: &PoolSettings) -> Result<Pools, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed transaction survives power loss, not only a process crash.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(settings.busy_timeout)
        .foreign_keys(true);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .after_release(|conn, _| Box::pin(async move { Ok(transaction_ended(conn).await) }))
        .min_connections(if in_memory { 1 } else { 0 })
        .acquire_timeout(settings.acquire_timeout)
        // An in-memory database lives only as long as its connection.
        .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
        .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
        .connect_with(options.clone())
        .await?;
    let reader = if in_memory {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await?
    };
    Ok(Pools::Sqlite { writer, reader })
}

/// Whether a writer connection handed back to the pool is really out of its transaction. Some errors
/// (a full disk, an I/O error, `INSERT OR ROLLBACK`) make SQLite roll a transaction back by itself;
/// sqlx's own `ROLLBACK` then fails and it keeps counting the transaction as open, so its next `BEGIN`
/// becomes a savepoint, and after the next rollback the connection can stay inside a transaction whose
/// commits never reach the disk while still answering Ok. Such a connection is closed instead of
/// reused. The check costs one round trip per release: once per batch of callbacks.
async fn transaction_ended(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection as _;
    // The ping queues behind any rollback sqlx started when the transaction was dropped, so the count
    // read after it is settled.
    let ended = conn.ping().await.is_ok() && !conn.is_in_transaction();
    if !ended {
        tracing::warn!("a SQLite writer connection was left inside a transaction; it is closed and replaced");
    }
    ended
}

async fn connect_postgres(url: &str, settings: &PoolSettings) -> Result<Pools, StoreError> {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(redact_url(&e.to_string())))?
        .options([("statement_timeout", timeout_ms.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        .acquire_timeout(settings.acquire_timeout)
        // Connections killed by a database restart are noticed before use rather than failing a call.
        .test_before_acquire(true)
        .connect_lazy_with(options);
    Ok(Pools::Postgres(pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_in_the_scheme_are_refused() {
        for bad in ["postgress://x/y", "sqlite3://a.db", "koogate.db", "mysql://x", ""] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(DatabaseUrl::parse("sqlite://k.db").unwrap().backend(), Backend::Sqlite);
        assert_eq!(DatabaseUrl::parse("postgresql://u@h/d").unwrap().backend(), Backend::Postgres);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/d"), "postgres://u:[REDACTED]@h/d");
        assert_eq!(redact_url("postgres:/u:secret@h/d"), "postgres:/u:[REDACTED]@h/d");
        assert_eq!(
            redact_url("postgres://u@h/d?password=secret&sslmode=require"),
            "postgres://u@h/d?password=[REDACTED]&sslmode=require"
        );
        assert!(!DatabaseUrl::parse("postgress://u:secret@h/d").unwrap_err().to_string().contains("secret"));
        let url = DatabaseUrl::parse("postgres://u:secret@h/d").unwrap();
        assert!(!format!("{url:?}").contains("secret"));
    }
}

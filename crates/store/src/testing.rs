//! Fresh databases for tests: a temporary SQLite file, or a new PostgreSQL database that is dropped when
//! the guard goes out of scope. `KOOGATE_TEST_BACKEND=postgres` selects PostgreSQL; its server is
//! `KOOGATE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`).

use std::path::PathBuf;

use sqlx::Connection;

use crate::backend::{Backend, DatabaseUrl};

/// Owns a test database and removes it on drop.
pub struct TestDatabase {
    url: DatabaseUrl,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { server: String, name: String },
}

/// The backend the tests of this run use.
pub fn test_backend() -> Backend {
    match std::env::var("KOOGATE_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

fn pg_server() -> String {
    std::env::var("KOOGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

impl TestDatabase {
    /// A new, empty database on the run's backend.
    pub async fn create() -> Self {
        Self::create_on(test_backend()).await
    }

    pub async fn create_on(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("creating a temporary directory");
                let path: PathBuf = dir.path().join("koogate.db");
                let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).expect("valid URL");
                Self { url, cleanup: Cleanup::Sqlite(dir) }
            }
            Backend::Postgres => {
                let server = pg_server();
                let name = format!("koogate_test_{:016x}", rand_u64());
                let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .expect("connecting to the test PostgreSQL server (is it running on 127.0.0.1:5432?)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("creating a test database");
                let _ = admin.close().await;
                let url = DatabaseUrl::parse(&format!("{server}/{name}")).expect("valid URL");
                Self { url, cleanup: Cleanup::Postgres { server, name } }
            }
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { server, name } = &self.cleanup else {
            return;
        };
        let (server, name) = (server.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a helper thread with its own
        // runtime drops the database, forcing off connections the test left open.
        let result = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(result, Ok(Ok(()))) {
            eprintln!("warning: could not drop the test database {}", self.url.as_str());
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is randomly keyed per process; with the process id and a counter the name is unique
    // across concurrent test binaries and within one.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

//! What the store tests share: each test runs once on SQLite (a fresh file) and once on PostgreSQL (a
//! private server of its own, backend/src/devdb.rs).

/// Runs each named `async fn(Store)` as two tests, `sqlite::<name>` and `postgres::<name>`. Names stay
/// under about 67 characters: the PostgreSQL server's socket path is limited.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $test() {
                let dir = std::env::temp_dir().join(format!("conference-store-{}-{}", stringify!($test), std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("test.db").display());
                super::$test(conference_backend::store::Store::open(&url).await.unwrap()).await;
                let _ = std::fs::remove_dir_all(&dir);
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $test() {
                let server = conference_backend::devdb::PostgresServer::start(stringify!($test)).unwrap();
                super::$test(conference_backend::store::Store::open(&server.url()).await.unwrap()).await;
            })*
        }
    };
}

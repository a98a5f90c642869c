//! The files signet keeps on disk (issue 11 item 11): a fresh SQLite data
//! directory is 0700 and the database 0600, and a master key file beside the
//! database is warned about at every start.

use crate::backend_tests;
use secrecy::SecretString;
use signet::config::Settings;

use crate::helpers::{captured_logs, Backend, TestApp, TEST_MASTER_KEY};

backend_tests!(a_master_key_beside_the_sqlite_database_is_warned_about_at_every_start);

const BESIDE: &str = "lies beside the database";

fn warnings_about(key_file: &str) -> usize {
    captured_logs().lines().filter(|l| l.starts_with("WARN") && l.contains(BESIDE) && l.contains(key_file)).count()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn a_master_key_beside_the_sqlite_database_is_warned_about_at_every_start(app: TestApp) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key_file = data.join("master.key").display().to_string();
    let sqlite_url = match app.backend {
        Backend::Sqlite => Some(format!("sqlite://{}/signet.db", data.display())),
        // PostgreSQL keeps no file beside the key: nothing to warn about. Its
        // database already holds keys sealed with the test master key.
        Backend::Postgres => {
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(&key_file, TEST_MASTER_KEY).unwrap();
            None
        }
    };
    let configure = |s: &mut Settings| {
        if let Some(url) = &sqlite_url {
            s.database.url = SecretString::from(url.clone());
        }
        s.keys.master_key = SecretString::from(String::new());
        s.keys.master_key_file = key_file.clone();
    };
    let app = app.restart_with(configure).await;
    let app = app.restart_with(configure).await;
    match app.backend {
        Backend::Sqlite => {
            assert_eq!(warnings_about(&key_file), 2, "once per start");
            #[cfg(unix)]
            {
                assert_eq!(mode(&data), 0o700, "data directory");
                assert_eq!(mode(&data.join("signet.db")), 0o600, "database file");
                assert_eq!(mode(std::path::Path::new(&key_file)), 0o600, "master key");
            }
        }
        Backend::Postgres => assert_eq!(warnings_about(&key_file), 0),
    }
    drop(app);
}

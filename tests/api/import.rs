//! `signet users import`: users from a Django `dumpdata` fixture and a CSV,
//! made by real Django hashers (tests/fixtures/make_django_fixture.py), log
//! in with their Django passwords and are re-hashed to signet's scheme.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::{json, Value};
use signet::accounts::import::{self, GroupRoles, Outcome};
use signet::accounts::model::{find_by_username_key, User};
use signet::accounts::password::{PasswordHasher, Verification, UNUSABLE_HASH};

use crate::backend_tests;
use crate::helpers::{assert_problem, captured_logs, TestApp};

backend_tests!(
    dumpdata_users_log_in_with_their_django_passwords_and_are_rehashed,
    the_cli_imports_csv_and_reports_bad_rows
);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The fixture's test-only passwords (tests/fixtures/README.md), with the
/// hash scheme Django stored and the roles signet gives with
/// `--group-role "Support Team=support"`. `gus` has an unusable password.
fn django_users() -> Vec<(&'static str, String, &'static str, Value)> {
    vec![
        ("ada", "pbkdf2-sha256 Lovelace 1815!".into(), "pbkdf2_sha256$", json!(["admin", "editors", "user"])),
        ("Bob.Sha1", "pbkdf2-sha1 Builder 1998?".into(), "pbkdf2_sha1$", json!(["staff", "user"])),
        (
            "cyd",
            "argon2id Charisse 1922 #".into(),
            "argon2$argon2id$",
            json!(["billing", "editors", "support", "user"]),
        ),
        ("dee_argon2i", "argon2i legacy Dee 2015 %".into(), "argon2$argon2i$", json!(["user"])),
        (
            "eve-bcrypt-sha256",
            format!("Grüße aus Köln, bcrypt_sha256 ☕ {}", "x".repeat(60)),
            "bcrypt_sha256$$2b$12$",
            json!(["support", "user"]),
        ),
        ("fay", "plain bcrypt Fay 2003 &".into(), "bcrypt$$2b$", json!(["billing", "user"])),
    ]
}

const HAL_PASSWORD: &str = "inactive Hal 9000 pbkdf2";

fn stored(app: &TestApp, username: &str) -> User {
    let mut conn = app.conn();
    find_by_username_key(&mut conn, &username.to_ascii_lowercase()).unwrap().unwrap_or_else(|| panic!("{username}"))
}

/// signet's own scheme at the configured cost.
fn signet_prefix(app: &TestApp) -> String {
    format!("bcrypt_sha256$$2b${:02}$", app.settings.passwords.bcrypt_cost)
}

/// The audit trail's `user.created` events of `users import`.
fn imported_events(app: &TestApp) -> Vec<signet::audit::model::AuditRow> {
    let filter = signet::audit::model::Filter { kind: Some("user.created"), limit: 1000, ..Default::default() };
    let rows = signet::audit::model::page(&mut app.conn(), &filter).unwrap();
    rows.into_iter().filter(|r| r.detail.contains("\"via\":\"import\"")).collect()
}

async fn login_access(app: &TestApp, username: &str, password: &str) -> String {
    let res = app.login(username, password).await;
    assert_eq!(res.status(), StatusCode::OK, "login {username}");
    let pair: Value = res.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

async fn dumpdata_users_log_in_with_their_django_passwords_and_are_rehashed(app: TestApp) {
    let rows = import::read_file(&Path::new(FIXTURES).join("django_users.json"), None).unwrap();
    let mapping = GroupRoles::parse(&["Support Team=support".to_owned()]).unwrap();
    let report = import::import(&mut app.conn(), rows, &mapping, app.clock_now());
    assert_eq!((report.created(), report.skipped(), report.failed()), (8, 0, 0), "{report}");
    let gus = report.row("gus").unwrap();
    assert!(gus.warnings.iter().any(|w| w.contains("Django marks it unusable")), "{report}");
    assert!(report.row("cyd").unwrap().warnings.is_empty(), "every group maps: {report}");
    let imported = imported_events(&app);
    assert_eq!(imported.len(), 8, "one user.created per imported user");
    assert!(imported.iter().all(|r| r.actor_id.is_none() && r.ip.is_none()), "{imported:#?}");
    assert!(imported.iter().any(|r| r.detail.contains("\"username\":\"ada\"")), "{imported:#?}");
    for (username, _, _, _) in django_users() {
        let hash = stored(&app, username).password_hash;
        assert!(!imported.iter().any(|r| r.detail.contains(&hash)), "{username}'s hash in the audit trail");
    }

    let prefix = signet_prefix(&app);
    let hasher = PasswordHasher::new(app.settings.passwords.bcrypt_cost);
    for (username, password, django_scheme, roles) in django_users() {
        assert!(stored(&app, username).password_hash.starts_with(django_scheme), "{username} imported as is");

        let access = login_access(&app, username, &password).await;
        let me: Value = app.get("/v1/auth/me", Some(&access)).await.json().await.unwrap();
        assert_eq!(me["username"], username);
        assert_eq!(me["roles"], roles, "{username}");
        assert_eq!(me["disabled"], false);

        // Re-hashed at the first login, to signet's scheme at the configured cost.
        let upgraded = stored(&app, username).password_hash;
        assert!(upgraded.starts_with(&prefix), "{username}: {}", &upgraded[..upgraded.len().min(21)]);
        assert_eq!(hasher.verify(&password, &upgraded), Verification { matches: true, needs_rehash: false });
        login_access(&app, username, &password).await;
        let res = app.login(username, "not the password").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }

    let ada: Value = app
        .get("/v1/auth/me", Some(&login_access(&app, "ada", "pbkdf2-sha256 Lovelace 1815!").await))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["created_at"], "2021-03-04T05:06:07Z", "Django's date_joined is kept");
    assert!(stored(&app, "cyd").email.is_none(), "Django's empty e-mail is no e-mail");

    // Inactive in Django: disabled, told so only after the right password.
    let hal = stored(&app, "hal");
    assert!(hal.disabled);
    assert_problem(app.login("hal", HAL_PASSWORD).await, 403, "account_disabled").await;
    assert_problem(app.login("hal", "wrong").await, 401, "invalid_credentials").await;

    // Unusable in Django: imported, but no password ever matches.
    assert_eq!(stored(&app, "gus").password_hash, UNUSABLE_HASH);
    for attempt in ["", "!", UNUSABLE_HASH, "gus"] {
        assert_problem(app.login("gus", attempt).await, 401, "invalid_credentials").await;
    }

    // Idempotent: nothing new, nothing overwritten (the upgraded hashes stay).
    let before = stored(&app, "ada").password_hash;
    let rows = import::read_file(&Path::new(FIXTURES).join("django_users_ids.json"), None).unwrap();
    let again = import::import(&mut app.conn(), rows, &mapping, app.clock_now());
    assert_eq!((again.created(), again.skipped(), again.failed()), (0, 8, 0), "{again}");
    assert_eq!(imported_events(&app).len(), 8, "skipped rows are no event");
    assert!(again.rows.iter().all(|r| r.outcome == Outcome::Skipped && r.detail == "already exists"));
    assert_eq!(stored(&app, "ada").password_hash, before);
    let (_, total) = signet::accounts::model::list(&mut app.conn(), 100, 0).unwrap();
    assert_eq!(total, 8);

    let logs = captured_logs();
    for (_, password, _, _) in django_users() {
        assert!(!logs.contains(&password), "a password was logged");
    }
}

fn run_import(db_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["users", "import"])
        .args(args)
        .env("SIGNET__DATABASE__URL", db_url)
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .output()
        .unwrap()
}

async fn the_cli_imports_csv_and_reports_bad_rows(app: TestApp) {
    let fixture = std::fs::read_to_string(Path::new(FIXTURES).join("django_users.csv")).unwrap();
    let md5 = "md5$salt$0123456789abcdef0123456789abcdef";
    let pbkdf2 = fixture.lines().find(|l| l.starts_with("ada,")).unwrap().split(',').nth(2).unwrap().to_owned();
    // The fixture, then rows that break something. The file is `.txt`: the
    // format comes from --format.
    let bad_rows = format!(
        "bad user,bad@example.com,{pbkdf2},true,false,false,\n\
         ADA,ada2@example.com,{pbkdf2},true,false,false,\n\
         typo,typo@example.com,{pbkdf2},true,perhaps,false,\n\
         short-row,{pbkdf2}\n\
         mailless,not-an-email,{pbkdf2},true,false,false,Sales Team|ops\n\
         legacy-md5,md5@example.com,{md5},true,false,false,\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.txt");
    std::fs::write(&file, format!("{fixture}{bad_rows}")).unwrap();
    let file = file.to_str().unwrap();

    let out = run_import(app.db.url(), &[file, "--format", "csv", "--group-role", "Support Team=support"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a failed row makes the exit status non-zero");
    assert!(stderr.contains("4 row(s) failed"), "{stderr}");
    assert!(stdout.ends_with("10 created, 0 skipped, 4 failed\n"), "{stdout}");
    let line =
        |needle: &str| stdout.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {stdout}"));
    assert!(line("bad user (line 10)").starts_with("failed"));
    assert!(line("ADA (line 11)").contains("differs only in case from \"ada\""));
    assert!(line("typo (line 12)").contains("is_staff: must be true or false"));
    assert!(line("(line 13)").contains("2 fields where the header has 7"));
    assert!(line("created mailless").contains("roles ops, user"));
    assert!(line("\"Sales Team\" dropped").contains("--group-role"));
    assert!(line("e-mail \"not-an-email\" dropped").contains("warning"));
    assert!(line("created legacy-md5").starts_with("created"));
    assert!(line("signet does not verify md5").contains("must be given a new one"));
    assert!(line("created hal").contains("disabled"));
    for secret in [pbkdf2.as_str(), md5, "Lovelace"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "the report never shows a password or hash");
    }

    // The running service sees them at once.
    for (username, password, _, roles) in django_users() {
        let access = login_access(&app, username, &password).await;
        let me: Value = app.get("/v1/auth/me", Some(&access)).await.json().await.unwrap();
        assert_eq!(me["roles"], roles, "{username}");
        assert!(stored(&app, username).password_hash.starts_with(&signet_prefix(&app)), "{username} re-hashed");
    }
    assert!(stored(&app, "mailless").email.is_none());
    assert_eq!(stored(&app, "legacy-md5").password_hash, UNUSABLE_HASH);
    assert_problem(app.login("legacy-md5", "anything").await, 401, "invalid_credentials").await;
    assert_problem(app.login("hal", HAL_PASSWORD).await, 403, "account_disabled").await;

    // Again: nothing new; the bad rows fail the same way.
    let out = run_import(app.db.url(), &[file, "--format", "csv", "--group-role", "Support Team=support"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.ends_with("0 created, 10 skipped, 4 failed\n"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("skipped ada (line 2): already exists")), "{stdout}");

    // A file that is not CSV or JSON at all imports nothing.
    let out = run_import(app.db.url(), &[&Path::new(FIXTURES).join("README.md").to_string_lossy()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CSV header must name"));
    let out = run_import(app.db.url(), &[file, "--group-role", "Support Team=Support"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("role names"));
}

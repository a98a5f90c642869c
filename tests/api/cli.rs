//! The `signet` binary's commands, against a fresh database.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::backend_tests;
use crate::helpers::{TestApp, TestDb, PASSWORD};

fn signet(db_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(args)
        .env("SIGNET__DATABASE__URL", db_url)
        .env("SIGNET__PASSWORDS__BCRYPT_COST", "4")
        .env_remove("DATABASE_URL")
        .env_remove("SIGNET_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("signet binary runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

backend_tests!(users_create_and_set_roles_work_on_a_fresh_database);

async fn users_create_and_set_roles_work_on_a_fresh_database(app: TestApp) {
    // A second, untouched database: the command must migrate it first.
    let db = TestDb::create(app.backend);
    let out = signet(
        db.url(),
        &["users", "create", "root", "--role", "admin", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("admin, user"), "{stdout}");
    assert!(!stdout.contains(PASSWORD));

    let out = signet(db.url(), &["users", "create", "Root", "--password-stdin"], Some(PASSWORD));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));

    let out = signet(db.url(), &["users", "create", "weakling", "--password-stdin"], Some("password1\n"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    // A generated password is printed once and works.
    let out = signet(db.url(), &["users", "create", "generated"], None);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let generated = stdout.lines().find_map(|l| l.strip_prefix("password: ")).unwrap().to_owned();

    let out = signet(db.url(), &["users", "set-roles", "generated", "auditor", "user"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = signet(db.url(), &["migrate"], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("none pending"));

    // The service on that database accepts both accounts.
    let served = TestApp::spawn_on(app.backend, db).await;
    let pair = served.login_ok("root").await;
    let me: serde_json::Value = served.get("/v1/auth/me", Some(pair.access.as_str())).await.json().await.unwrap();
    assert_eq!(me["roles"], serde_json::json!(["admin", "user"]));
    let res = served.login("generated", &generated).await;
    assert_eq!(res.status(), 200);
}

#[test]
fn unknown_config_keys_and_bad_values_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["migrate"])
        .env("SIGNET__DATABASE__URL", &url)
        .env("SIGNET__TOKENS__ACCESS_TTL", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_ttl"), "{}", String::from_utf8_lossy(&out.stderr));

    let file = dir.path().join("signet.toml");
    std::fs::write(&file, "[passwords]\nbcrypt_cost = 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .env("SIGNET__DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("passwords.bcrypt_cost"));
}

#[test]
fn a_wrong_postgres_password_is_reported_at_once() {
    if !crate::helpers::postgres_configured() {
        return;
    }
    // trust auth accepts any password, so name a role that does not exist.
    let started = std::time::Instant::now();
    let out = signet("postgres://no_such_role:secret@127.0.0.1:5432/postgres", &["migrate"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such_role"), "{stderr}");
    assert!(!stderr.contains("secret"), "the password is never printed: {stderr}");
    assert!(started.elapsed().as_secs() < 10);
}

backend_tests!(keys_list_rotate_and_retire);

async fn keys_list_rotate_and_retire(app: TestApp) {
    let url = app.db.url().to_owned();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(args)
            .env("SIGNET__DATABASE__URL", &url)
            .env("SIGNET__KEYS__MASTER_KEY", crate::helpers::TEST_MASTER_KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let listed = run(&["keys", "list"]);
    assert_eq!(listed.lines().filter(|l| l.contains(" active ")).count(), 1, "{listed}");

    let rotated = run(&["keys", "rotate"]);
    assert!(rotated.contains("published next key"), "{rotated}");
    let listed = run(&["keys", "list"]);
    assert_eq!(listed.lines().filter(|l| l.contains(" next ")).count(), 1, "{listed}");
    // A second rotate reuses the pending key.
    assert!(run(&["keys", "rotate"]).contains("already published"));

    // Emergency: the next key signs at once.
    let rotated = run(&["keys", "rotate", "--now"]);
    assert!(rotated.contains("signs from now"), "{rotated}");
    let listed = run(&["keys", "list"]);
    assert_eq!(listed.lines().filter(|l| l.contains(" retired ")).count(), 1, "{listed}");
    let active_kid =
        listed.lines().find(|l| l.contains(" active ")).unwrap().split_whitespace().next().unwrap().to_owned();

    let retired = run(&["keys", "retire", &active_kid]);
    assert!(retired.contains("revoked"), "{retired}");
    let listed = run(&["keys", "list"]);
    assert!(listed.lines().any(|l| l.starts_with(&active_kid) && l.contains(" revoked ")), "{listed}");
    assert_eq!(listed.lines().filter(|l| l.contains(" active ")).count(), 1, "a replacement signs: {listed}");

    // The running service picks all of it up at its next reload.
    app.tick().await;
    app.register_ok("after").await;
    let pair = app.login_ok("after").await;
    let kid = jsonwebtoken::decode_header(pair.access.as_str()).unwrap().kid.unwrap();
    assert_ne!(kid, active_kid);
    assert!(listed.contains(&kid));
}

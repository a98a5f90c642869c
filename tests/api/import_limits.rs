//! What an import may not do: grant signet's reserved roles through a Django
//! group's name (issue 11 item 7), or store a hash whose work factors would
//! pin a login thread (item 8).

use reqwest::StatusCode;
use serde_json::{json, Value};
use signet::accounts::import::{self, Format, GroupRoles, Outcome};
use signet::accounts::model::find_by_username_key;
use signet::accounts::password::{PasswordHasher, UNUSABLE_HASH};

use crate::backend_tests;
use crate::helpers::{TestApp, PASSWORD};

backend_tests!(
    a_group_named_like_a_reserved_role_grants_it_only_when_mapped,
    hashes_over_the_work_factor_caps_import_as_must_reset
);

fn user_record(username: &str, password: &str, groups: &[&str]) -> Value {
    json!({"model": "auth.user", "pk": 1, "fields": {
        "username": username, "password": password, "is_superuser": false, "is_staff": false, "groups": groups,
    }})
}

fn roles_of(app: &TestApp, username: &str) -> Vec<String> {
    let user = find_by_username_key(&mut app.conn(), username).unwrap().unwrap();
    user.role_list()
}

async fn a_group_named_like_a_reserved_role_grants_it_only_when_mapped(app: TestApp) {
    let hash = PasswordHasher::new(4).hash(PASSWORD).unwrap();
    let file = json!([user_record("mallory", &hash, &["Admin", "Staff", "Editors"])]).to_string();
    let rows = import::parse(&file, Format::Json).unwrap();
    let report = import::import(&mut app.conn(), rows, &GroupRoles::default(), app.clock_now());
    let row = report.row("mallory").unwrap();
    assert_eq!(row.outcome, Outcome::Created, "{report}");
    assert_eq!(roles_of(&app, "mallory"), ["editors", "user"], "{report}");
    assert_eq!(row.warnings.iter().filter(|w| w.contains("reserved") && w.contains("--group-role")).count(), 2);
    let access = app.login_ok("mallory").await.access;
    assert_eq!(app.get("/v1/admin/users", Some(&access)).await.status(), StatusCode::FORBIDDEN);

    // Said explicitly, the mapping grants it.
    let file = json!([user_record("trent", &hash, &["Admin"])]).to_string();
    let rows = import::parse(&file, Format::Json).unwrap();
    let mapping = GroupRoles::parse(&["Admin=admin".to_owned()]).unwrap();
    let report = import::import(&mut app.conn(), rows, &mapping, app.clock_now());
    assert!(report.row("trent").unwrap().warnings.is_empty(), "{report}");
    assert_eq!(roles_of(&app, "trent"), ["admin", "user"]);
}

async fn hashes_over_the_work_factor_caps_import_as_must_reset(app: TestApp) {
    // Valid shapes, absurd work: a bcrypt cost of 31 takes days to check.
    let slow = [
        ("slow_bcrypt", "bcrypt$$2b$31$hQ7TDK92TxWZs9/bgLSc0OvW1/i6E4U5.KgSXwMhllZB9oolcAtDu", "bcrypt cost 31"),
        (
            "slow_sha256",
            "bcrypt_sha256$$2b$20$JCUS.qntpNuLiERmdLmDh.hoN5HVkx4CF1.2iCWoI2eaic7UhU/ly",
            "bcrypt cost 20",
        ),
        (
            "slow_argon2",
            "argon2$argon2id$v=19$m=262144,t=20,p=2$M0c4YUVBNkRJRUdNUFdKU05nbll6OQ$2xEOQsMasHr2Gd280i9mhak9s0cALBHYqqyNKeqfv/4",
            "memory times passes",
        ),
        ("slow_pbkdf2", "pbkdf2_sha256$50000000$d0LbZu0yf6USg9fzJiasCZ$KZ7j2TXDRjBRNKwtT6QO9aohRBchbkwCqIpTSMsSCvE=", "50000000 iterations"),
    ];
    let file: Vec<Value> = slow.iter().map(|(name, hash, _)| user_record(name, hash, &[])).collect();
    let rows = import::parse(&Value::Array(file).to_string(), Format::Json).unwrap();
    let report = import::import(&mut app.conn(), rows, &GroupRoles::default(), app.clock_now());
    for (name, hash, factor) in slow {
        let row = report.row(name).unwrap();
        assert_eq!(row.outcome, Outcome::Created, "{report}");
        assert!(row.warnings.iter().any(|w| w.contains("too much work") && w.contains(factor)), "{report}");
        assert!(!report.to_string().contains(hash));
        let stored = find_by_username_key(&mut app.conn(), name).unwrap().unwrap();
        assert_eq!(stored.password_hash, UNUSABLE_HASH, "{name}");
        assert_eq!(app.login(name, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    }
}

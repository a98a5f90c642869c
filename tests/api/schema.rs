//! Both migration trees must produce the same tables and columns.

use std::collections::BTreeMap;

use diesel::sql_types::{Bool, Text};
use diesel::{QueryableByName, RunQueryDsl};

use crate::helpers::{postgres_configured, raw_conn, Backend, TestDb};

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

type Shape = BTreeMap<String, BTreeMap<String, bool>>;

fn shape(backend: Backend) -> (Shape, TestDb) {
    let db = TestDb::create(backend);
    let mut conn = raw_conn(db.url());
    signet::db::run_migrations(&mut conn).expect("migrations");
    let query = match backend {
        Backend::Sqlite => {
            "SELECT m.name AS table_name, p.name AS column_name, (p.\"notnull\" = 0) AS nullable \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name, (is_nullable = 'YES') AS nullable \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'"
        }
    };
    let columns: Vec<Column> = diesel::sql_query(query).load(&mut conn).expect("columns");
    let mut shape = Shape::new();
    for c in columns {
        shape.entry(c.table_name).or_default().insert(c.column_name, c.nullable);
    }
    (shape, db)
}

#[test]
fn both_migration_trees_produce_the_same_tables_and_columns() {
    let (sqlite, _db) = shape(Backend::Sqlite);
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        [
            "api_tokens",
            "audit_events",
            "clients",
            "login_throttle",
            "refresh_tokens",
            "sessions",
            "signing_keys",
            "status_entries",
            "status_lists",
            "users"
        ]
    );
    if !postgres_configured() {
        eprintln!("SIGNET_TEST_POSTGRES_URL not set: compared the SQLite tree only");
        return;
    }
    let (postgres, _db) = shape(Backend::Postgres);
    assert_eq!(sqlite, postgres);
}

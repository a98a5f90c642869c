// @generated in the shape of `diesel print-schema`; both migration trees
// (migrations/sqlite, migrations/postgres) produce exactly these tables and
// columns, which tests/api/schema.rs checks.

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        token_hash -> Text,
        prefix -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        status_list -> Nullable<BigInt>,
        status_idx -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> Timestamp,
        #[sql_name = "type"]
        kind -> Text,
        actor_id -> Nullable<Text>,
        subject_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Text,
        roles -> Text,
        audiences -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled -> Bool,
        session_id -> Nullable<Text>,
        session_expires_at -> Nullable<Timestamp>,
        status_list -> Nullable<BigInt>,
        status_idx -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_throttle (username_key) {
        username_key -> Text,
        failures -> Integer,
        lockouts -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Text,
        session_id -> Text,
        user_id -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
        status_list -> Nullable<BigInt>,
        status_idx -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        state -> Text,
        private_key -> Binary,
        key_protection -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
        publish_until -> Nullable<Timestamp>,
        verify_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    status_entries (list_id, idx) {
        list_id -> BigInt,
        idx -> BigInt,
        invalid -> Bool,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    status_lists (id) {
        id -> BigInt,
        size -> BigInt,
        next_idx -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        email -> Nullable<Text>,
        password_hash -> Text,
        roles -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(status_entries -> status_lists (list_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    audit_events,
    clients,
    login_throttle,
    refresh_tokens,
    sessions,
    signing_keys,
    status_entries,
    status_lists,
    users,
);

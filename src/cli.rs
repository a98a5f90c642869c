//! The command line: `signet [serve]`, `signet migrate`, `signet users ...`.
//! Every command that touches the database brings its schema up to date first.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::{Parser, Subcommand};

use secrecy::{ExposeSecret, SecretString};

use crate::accounts::password::{PasswordHasher, PasswordPolicy};
use crate::accounts::{self, import};
use crate::clients;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::{self, DbConnection};
use crate::keys;
use crate::keys::master::MasterKey;
use crate::keys::rotation::{Activation, Schedule};
use crate::maintenance;
use crate::Application;

#[derive(Parser)]
#[command(name = "signet", version, about = "A small JWT-issuing identity service.")]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (also SIGNET_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage OAuth clients (service accounts).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Purge what has expired once (what every instance does every
    /// maintenance.interval_secs) and print the counts.
    Gc,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List keys: kid, algorithm, state and dates.
    List,
    /// Start a rotation: a new key is published now and signs after the
    /// pre-publication time.
    Rotate {
        /// EMERGENCY ONLY: sign with the new key as soon as instances reload.
        /// Verifiers that cached the JWKS see an unknown kid until they refetch.
        #[arg(long)]
        now: bool,
    },
    /// Compromise: stop signing and verifying with KID at once and erase it.
    Retire {
        /// A kid is base64url and may start with '-'.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Create a client; prints its client_id and client_secret (shown once).
    Create {
        name: String,
        /// A role its client-credentials tokens may carry; repeatable.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// An audience it may exchange tokens for; repeatable.
        #[arg(long = "audience", value_name = "AUDIENCE")]
        audiences: Vec<String>,
    },
    /// List clients (never their secrets).
    List,
    /// Delete a client; its tokens' session is revoked.
    Delete { client_id: String },
    /// Give a client a new secret (printed once); the old one and its tokens stop.
    RotateSecret { client_id: String },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create an account (role `user` plus any --role). Without --password-stdin
    /// a strong password is generated and printed once.
    Create {
        username: String,
        /// An extra role, e.g. `--role admin`; repeatable.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace an account's roles.
    SetRoles {
        username: String,
        #[arg(required = true, value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Import users with their password hashes from Django: `manage.py
    /// dumpdata auth.user` JSON, or CSV (username,email,password,is_active,
    /// is_staff,is_superuser,groups; groups separated by `|`). Existing
    /// usernames are skipped; exits non-zero if a row failed.
    Import {
        /// The `dumpdata` JSON or CSV file.
        file: PathBuf,
        /// The file's format; by default from its extension, else its content.
        #[arg(long, value_parser = ["json", "csv"])]
        format: Option<String>,
        /// Map a Django group to a role, e.g. `--group-role "Support Team=support"`;
        /// repeatable. `GROUP=` drops the group. Unmapped groups become their
        /// lower-cased name when that is a valid role name, except the roles
        /// signet reserves (admin, staff, user): those only by an explicit
        /// mapping such as `--group-role Admin=admin`.
        #[arg(long = "group-role", value_name = "GROUP=ROLE")]
        group_roles: Vec<String>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let mut conn = open(&settings)?;
            let applied = db::run_migrations(&mut conn)?;
            println!(
                "migrations applied: {}",
                if applied.is_empty() { "none pending".into() } else { applied.join(", ") }
            );
            Ok(())
        }
        Command::Users(UsersCommand::Create { username, roles, email, password_stdin }) => {
            let (password, generated) =
                if password_stdin { (read_password_line()?, false) } else { (generate_password()?, true) };
            let policy = PasswordPolicy {
                min_length: settings.passwords.min_length,
                min_strength: settings.passwords.min_strength,
            };
            let hasher = PasswordHasher::new(settings.passwords.bcrypt_cost);
            let mut conn = open(&settings)?;
            let now = SystemClock.now_db();
            let user = accounts::commands::create_user(
                &mut conn,
                &hasher,
                &policy,
                &username,
                email.as_deref(),
                roles,
                password.expose_secret(),
                now,
            )?;
            println!("created user {} ({}) with roles {}", user.username, user.id, user.role_list().join(", "));
            if generated {
                println!("password: {}", password.expose_secret());
            }
            Ok(())
        }
        Command::Users(UsersCommand::Import { file, format, group_roles }) => {
            let group_roles = import::GroupRoles::parse(&group_roles)?;
            let rows = import::read_file(&file, format.as_deref())?;
            let mut conn = open(&settings)?;
            let report = import::import(&mut conn, rows, &group_roles, SystemClock.now_db());
            print!("{report}");
            if report.failed() > 0 {
                bail!(
                    "{} row(s) failed; fix them and run the import again (existing users are skipped)",
                    report.failed()
                );
            }
            Ok(())
        }
        Command::Keys(command) => keys_command(&settings, command),
        Command::Clients(command) => clients_command(&settings, command),
        Command::Gc => {
            let mut conn = open(&settings)?;
            let pace = maintenance::Pace::for_backend(&conn);
            let report = maintenance::purge(&mut conn, &settings, SystemClock.now_db(), pace)?;
            println!("{report}");
            Ok(())
        }
        Command::Users(UsersCommand::SetRoles { username, roles }) => {
            let mut conn = open(&settings)?;
            let (user, roles) = accounts::commands::set_roles(&mut conn, &username, &roles, SystemClock.now_db())?;
            println!("{} now has roles {}", user.username, roles.join(", "));
            Ok(())
        }
    }
}

fn keys_command(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let mut conn = open(settings)?;
    let now = SystemClock.now_db();
    let schedule = Schedule::from_settings(settings);
    let master = || -> anyhow::Result<MasterKey> {
        let fresh = keys::model::count(&mut open(settings)?)? == 0;
        MasterKey::load(&settings.keys, fresh)
    };
    match command {
        KeysCommand::List => {
            println!(
                "{:<44} {:<6} {:<8} {:<20} {:<20} {:<20}",
                "KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED"
            );
            let date = |t: Option<chrono::NaiveDateTime>| {
                t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
            };
            for key in keys::commands::list(&mut conn)? {
                println!(
                    "{:<44} {:<6} {:<8} {:<20} {:<20} {:<20}",
                    key.kid,
                    key.algorithm,
                    key.state,
                    date(Some(key.created_at)),
                    date(key.activated_at),
                    date(key.retired_at)
                );
            }
        }
        KeysCommand::Rotate { now: emergency } => {
            let activation = if emergency { Activation::Now } else { Activation::Scheduled };
            println!("{}", keys::commands::rotate(&mut conn, &master()?, &schedule, now, activation)?);
        }
        KeysCommand::Retire { kid } => {
            for event in keys::commands::retire(&mut conn, &master()?, &schedule, &kid, now)? {
                println!("{event}");
            }
        }
    }
    Ok(())
}

fn clients_command(settings: &Settings, command: ClientsCommand) -> anyhow::Result<()> {
    let mut conn = open(settings)?;
    let now = SystemClock.now_db();
    let master = |conn: &mut DbConnection| -> anyhow::Result<MasterKey> {
        MasterKey::load(&settings.keys, keys::model::count(conn)? == 0)
    };
    let print_secret = |created: &clients::service::WithSecret| {
        println!("client_id: {}", created.client.id);
        println!("client_secret: {}", created.secret.expose_secret());
    };
    match command {
        ClientsCommand::Create { name, roles, audiences } => {
            let master = master(&mut conn)?;
            let created = clients::commands::create(&mut conn, &master, &name, &roles, &audiences, now)?;
            print_secret(&created);
        }
        ClientsCommand::List => {
            println!("{:<36} {:<24} {:<8} {:<30} AUDIENCES", "CLIENT_ID", "NAME", "DISABLED", "ROLES");
            for client in clients::commands::list(&mut conn)? {
                println!(
                    "{:<36} {:<24} {:<8} {:<30} {}",
                    client.id,
                    client.name,
                    client.disabled,
                    client.role_list().join(","),
                    client.audience_list().join(",")
                );
            }
        }
        ClientsCommand::Delete { client_id } => {
            clients::commands::delete(&mut conn, &client_id, now)?;
            println!("deleted client {client_id}");
        }
        ClientsCommand::RotateSecret { client_id } => {
            let master = master(&mut conn)?;
            let rotated = clients::commands::rotate_secret(&mut conn, &master, &client_id, now)?;
            print_secret(&rotated);
        }
    }
    Ok(())
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let bind = settings.server.bind;
        let app = Application::build(settings, Arc::new(SystemClock)).await?;
        log::info!("signet listening on http://{}:{}", bind.ip(), app.port());
        if let Some(port) = app.metrics_port() {
            log::info!("metrics on port {port} (/metrics)");
        }
        app.stop_on_signals();
        log::info!("create the first admin with: signet users create NAME --role admin");
        app.run_until_stopped().await.context("server failed")
    })
}

/// One connection with the schema brought up to date.
fn open(settings: &Settings) -> anyhow::Result<DbConnection> {
    let target = db::Target::parse(&settings.database.url, settings.database.connect_timeout_secs);
    let manager = db::ConnectionManager::new(target.clone());
    let mut conn =
        manager.connect_to_target().with_context(|| format!("cannot open the database ({})", target.describe()))?;
    db::run_migrations(&mut conn)?;
    Ok(conn)
}

fn read_password_line() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).into())
}

/// 144 random bits, URL-safe base64.
fn generate_password() -> anyhow::Result<SecretString> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness available"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes).into())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_kid_that_starts_with_a_hyphen_is_a_kid_not_a_flag() {
        let cli = Cli::try_parse_from(["signet", "keys", "retire", "-NLoCvePq5IWjiBWSVU"]).expect("parses");
        let Some(Command::Keys(KeysCommand::Retire { kid })) = cli.command else {
            panic!("not keys retire");
        };
        assert_eq!(kid, "-NLoCvePq5IWjiBWSVU");
    }
}

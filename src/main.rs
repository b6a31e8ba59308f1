//! drbot command line: the edge where settings, clocks and adapters are wired together.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use drbot::app::App;
use drbot::chat::console::{Console, ConsoleOptions};
use drbot::clock::{Clock, ManualClock, SystemClock};
use drbot::command::ExportFormat;
use drbot::config::Settings;

#[derive(Parser)]
#[command(
    name = "drbot",
    version,
    about = "Runs the disaster-recovery SOP from the incident channel"
)]
struct Cli {
    /// TOML settings file (environment variables DRBOT__<SECTION>__<KEY> override it).
    #[arg(long, global = true, env = "DRBOT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A local incident channel on stdin/stdout (interactive or piped).
    Console {
        #[arg(long, default_value = "incident")]
        channel: String,
        #[arg(long, env = "USER", default_value = "operator")]
        user: String,
        /// Start a simulated clock at this UTC time; `:advance 15m` moves it (tabletop drills).
        #[arg(long)]
        clock: Option<DateTime<Utc>>,
    },
    /// Serve Slack and Discord over HTTP, with the scheduler and the outbox (SIGTERM stops it cleanly).
    Serve,
    /// Create or upgrade the database schema.
    Migrate,
    /// The Slack app manifest and Discord command definitions in `commands/`.
    Commands {
        #[command(subcommand)]
        command: CommandsCmd,
    },
    /// Timeline tools.
    Timeline {
        #[command(subcommand)]
        command: TimelineCmd,
    },
}

#[derive(Subcommand)]
enum TimelineCmd {
    /// Export an incident's timeline for the postmortem.
    Export {
        /// Incident: INC-3 or 3.
        incident: String,
        #[arg(long, value_enum)]
        format: Format,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CommandsCmd {
    /// Write the files, generated from the command grammar.
    Print {
        #[arg(long, default_value = drbot::command::manifest::COMMANDS_DIR)]
        dir: PathBuf,
    },
    /// Fail, showing the differences, when the files are not what the grammar generates.
    Check {
        #[arg(long, default_value = drbot::command::manifest::COMMANDS_DIR)]
        dir: PathBuf,
    },
    /// Register `/dr` with Discord (globally, or in one guild where it applies at once).
    RegisterDiscord {
        #[arg(long)]
        guild: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Md,
    Json,
    Csv,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DRBOT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Cmd::Console {
            channel,
            user,
            clock,
        } => {
            let manual = clock.map(ManualClock::new);
            let clock: Arc<dyn Clock> = match &manual {
                Some(m) => Arc::new(m.clone()),
                None => Arc::new(SystemClock),
            };
            let app = App::build(&settings, clock)
                .await
                .context("starting drbot")?;
            let opts = ConsoleOptions {
                channel,
                user,
                operators: settings.console.operators.clone(),
                export_dir: std::env::current_dir()?,
            };
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            Console::new(&app, opts, manual, std::io::stdout().lock())
                .run(stdin)
                .await?;
        }
        Cmd::Serve => {
            let app = App::build(&settings, Arc::new(SystemClock))
                .await
                .context("starting drbot")?;
            drbot::server::run(Arc::new(app), &settings, shutdown_signal()).await?;
        }
        Cmd::Commands { command } => commands(command, &settings).await?,
        Cmd::Migrate => {
            drbot::store::Store::connect(&settings.database.url)
                .await
                .context("migrating")?;
            eprintln!("database is up to date");
        }
        Cmd::Timeline {
            command:
                TimelineCmd::Export {
                    incident,
                    format,
                    out,
                },
        } => {
            let id: i64 = incident
                .trim_start_matches("INC-")
                .trim_start_matches("inc-")
                .parse()
                .with_context(|| format!("`{incident}` is not an incident id (INC-3 or 3)"))?;
            let app = App::build(&settings, Arc::new(SystemClock)).await?;
            if app.store.incident(id).await?.is_none() {
                bail!("no incident INC-{id} in {}", redact(&settings.database.url));
            }
            let format = match format {
                Format::Md => ExportFormat::Markdown,
                Format::Json => ExportFormat::Json,
                Format::Csv => ExportFormat::Csv,
            };
            match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    drbot::export::export(&app.store, id, format, &app.runbook, file).await?;
                }
                None => {
                    drbot::export::export(
                        &app.store,
                        id,
                        format,
                        &app.runbook,
                        std::io::stdout().lock(),
                    )
                    .await?
                }
            }
        }
    }
    Ok(())
}

async fn commands(command: CommandsCmd, settings: &Settings) -> Result<()> {
    use drbot::command::manifest;
    match command {
        CommandsCmd::Print { dir } => {
            manifest::write(&dir).with_context(|| format!("writing {}", dir.display()))?;
            eprintln!("wrote {}", dir.display());
        }
        CommandsCmd::Check { dir } => {
            if let Err(diff) = manifest::check(&dir) {
                eprintln!("{diff}");
                bail!(
                    "{} is out of sync with the command grammar: run `drbot commands print`",
                    dir.display()
                );
            }
            eprintln!("{} matches the command grammar", dir.display());
        }
        CommandsCmd::RegisterDiscord { guild } => {
            let discord = drbot::chat::discord::Discord::new(&settings.discord).context(
                "set DRBOT__DISCORD__BOT_TOKEN and DRBOT__DISCORD__APPLICATION_ID to register commands",
            )?;
            discord
                .register_commands(guild.as_deref(), &manifest::discord_commands())
                .await
                .context("registering the /dr command with Discord")?;
            eprintln!(
                "registered /dr {}",
                guild.map_or(
                    "globally (may take up to an hour to appear)".into(),
                    |g| format!("in guild {g}")
                )
            );
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

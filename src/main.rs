//! drbot command line: the edge where settings, clocks and adapters are wired together.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use drbot::app::App;
use drbot::clock::{Clock, ManualClock, SystemClock};
use drbot::command::ExportFormat;
use drbot::config::Settings;
use drbot::server::console::{Console, ConsoleOptions};

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
        /// Also serve the read-only incident web view here (e.g. 127.0.0.1:8081).
        #[arg(long)]
        web: Option<String>,
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
    /// Check that this install can do what the SOP needs: settings, database, Slack, Discord,
    /// Kubernetes (CRDs, every permission), the offsite bucket. Exits non-zero on a failure.
    Doctor {
        #[arg(long, value_enum, default_value = "text")]
        format: DoctorFormat,
        /// The guild the Discord `/dr` command was registered in (default: global).
        #[arg(long)]
        discord_guild: Option<String>,
    },
    /// The Kubernetes permissions drbot needs (the list the Helm chart renders its RBAC from).
    Rbac {
        #[command(subcommand)]
        command: RbacCmd,
    },
    /// Timeline tools.
    Timeline {
        #[command(subcommand)]
        command: TimelineCmd,
    },
    /// SOP §10.1 per database cluster: the last full-restore and PITR drills, time to restore,
    /// and whether this quarter's are met, due or overdue (what `/dr drills` shows).
    Drills {
        /// Judge as of this UTC time instead of now.
        #[arg(long)]
        clock: Option<DateTime<Utc>>,
    },
    /// Print the manifests a restore would apply: YAML on stdout, the plan on stderr (`# …`).
    Plan {
        #[command(subcommand)]
        command: PlanCmd,
    },
}

#[derive(Subcommand)]
enum RbacCmd {
    /// Print `deploy/helm/drbot/files/permissions.yaml`.
    Print,
    /// Fail when the chart's copy differs from drbot's list.
    Check {
        /// The chart's permissions file.
        #[arg(long, default_value = "deploy/helm/drbot/files/permissions.yaml")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum PlanCmd {
    /// StackGres point-in-time recovery into a new cluster (SOP §8).
    Pitr {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Recovery target: 2026-02-08T09:55:00Z, 2026-02-08T09:55Z, 2026-02-08T10:55+01:00 or
        /// "2026-02-08 09:55 UTC"; without a zone only when safety.default_zone is set.
        #[arg(long)]
        at: String,
    },
    /// StackGres restore of the latest (or the given) backup into a new cluster (SOP §7).
    RestoreLatest {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Velero restore (SOP §6.3).
    InfraRestore {
        /// Velero Backup to restore; without it a cluster picks the newest Completed one.
        #[arg(long)]
        backup: Option<String>,
        /// Namespaces to leave out (comma-separated; globs allowed).
        #[arg(long, value_delimiter = ',')]
        exclude_namespaces: Vec<String>,
        /// Only these namespaces (comma-separated; globs allowed); default all.
        #[arg(long, value_delimiter = ',')]
        include_namespaces: Vec<String>,
        /// Namespace of the Velero server, where the Restore is created [default:
        /// kubernetes.velero_namespace with the kubernetes backend, else velero].
        #[arg(long)]
        velero_namespace: Option<String>,
        /// Name of the Restore [default: drbot-restore-{backup}, or drbot-restore-latest].
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(clap::Args)]
struct DatabaseArgs {
    /// Namespace of the source SGCluster and its SGBackups.
    #[arg(long)]
    namespace: String,
    /// The source SGCluster (it is not touched: the restore makes a new one).
    #[arg(long)]
    cluster: String,
    /// SGBackup to restore from; without it a cluster picks the newest suitable one.
    #[arg(long)]
    backup: Option<String>,
    /// Namespace of the new cluster [default: --namespace]; another one gets a copy of the
    /// SGBackup.
    #[arg(long)]
    target_namespace: Option<String>,
    /// Name of the new SGCluster, at most 44 characters
    /// [default: {cluster}-restore-{YYYYMMDDHHMM} for pitr, {cluster}-restore-latest].
    #[arg(long)]
    name: Option<String>,
    /// PostgreSQL version of the new cluster, the backup's major (with --backup)
    /// [default: 16].
    #[arg(long)]
    postgres_version: Option<String>,
    /// Instances of the new cluster (with --backup) [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    instances: Option<u32>,
    /// Volume size per instance (with --backup) [default: 20Gi].
    #[arg(long)]
    volume_size: Option<String>,
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
        #[arg(long, default_value = drbot::chat::manifest::COMMANDS_DIR)]
        dir: PathBuf,
    },
    /// Fail, showing the differences, when the files are not what the grammar generates.
    Check {
        #[arg(long, default_value = drbot::chat::manifest::COMMANDS_DIR)]
        dir: PathBuf,
    },
    /// Register `/dr` with Discord (globally, or in one guild where it applies at once).
    RegisterDiscord {
        #[arg(long)]
        guild: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DoctorFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Md,
    Json,
    Csv,
}

/// mimalloc instead of glibc's malloc: a request, a commit and an export each move memory
/// between threads (runtime workers, the store's writer and readers), and glibc serialises
/// such frees on the allocating thread's arena lock. `benches/export.rs` measures the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DRBOT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // One worker: at the load a chat bot sees, a second one mostly sleeps on a condvar and is
    // woken for each request only to find it taken (1.5 of a request's 6 context switches).
    // The SQLite writer, blocking reads and exports have threads of their own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    if let Cmd::Doctor {
        format,
        discord_guild,
    } = &cli.command
    {
        let json = matches!(format, DoctorFormat::Json);
        let checks = match Settings::load(cli.config.as_deref()) {
            Ok(settings) => {
                let opts = drbot::doctor::Options {
                    discord_guild: discord_guild.clone(),
                };
                drbot::doctor::run(&settings, Arc::new(SystemClock), &opts).await
            }
            Err(e) => vec![drbot::doctor::Check {
                name: "settings".into(),
                ok: false,
                detail: e.to_string(),
                fix: Some(
                    "fix the named key in the settings file or the DRBOT__… environment".into(),
                ),
            }],
        };
        print!("{}", drbot::doctor::render(&checks, json));
        if checks.iter().any(|c| !c.ok) {
            std::process::exit(1);
        }
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Cmd::Console {
            channel,
            user,
            clock,
            web,
        } => {
            let manual = clock.map(ManualClock::new);
            let clock: Arc<dyn Clock> = match &manual {
                Some(m) => Arc::new(m.clone()),
                None => Arc::new(SystemClock),
            };
            let app = App::build(&settings, clock)
                .await
                .context("starting drbot")?;
            app.store.hold_sole_process().await?;
            let app = Arc::new(app);
            let web = match web {
                Some(listen) => {
                    let web = settings
                        .web
                        .for_console(&listen)
                        .map_err(|e| anyhow::anyhow!("--web: {e}"))?;
                    drbot::server::web::bind(app.clone(), &settings, &web).await?
                }
                None => drbot::server::web::bind(app.clone(), &settings, &settings.web).await?,
            };
            if let Some(web) = &web {
                eprintln!("web view: http://{}/incidents", web.addr);
            }
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
            if let Some(web) = web {
                web.stop().await?;
            }
        }
        Cmd::Serve => {
            let app = App::build(&settings, Arc::new(SystemClock))
                .await
                .context("starting drbot")?;
            app.store.hold_sole_process().await?;
            drbot::server::run(Arc::new(app), &settings, shutdown_signal()).await?;
        }
        Cmd::Commands { command } => commands(command, &settings).await?,
        Cmd::Doctor { .. } => unreachable!("handled before the settings are loaded"),
        Cmd::Rbac { command } => {
            let wanted = drbot::cluster::kube::access::permissions_yaml();
            match command {
                RbacCmd::Print => print!("{wanted}"),
                RbacCmd::Check { file } => {
                    let found = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    if found != wanted {
                        bail!(
                            "{} differs from drbot's permission list; regenerate it with `drbot rbac print > {}`",
                            file.display(),
                            file.display()
                        );
                    }
                    eprintln!("{} matches drbot's permission list", file.display());
                }
            }
        }
        Cmd::Plan { command } => plan::run(command, &settings).await?,
        Cmd::Drills { clock } => {
            let clock: Arc<dyn Clock> = match clock {
                Some(at) => Arc::new(ManualClock::new(at)),
                None => Arc::new(SystemClock),
            };
            let app = App::build(&settings, clock).await?;
            println!("{}", app.drills_view().await?);
            app.store.close().await;
        }
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
            let impact = drbot::export::Impact {
                continuity: &app.continuity,
                now: app.clock.now(),
            };
            match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    drbot::export::export_with(&app.store, id, format, &app.runbook, impact, file)
                        .await?;
                }
                None => {
                    drbot::export::export_with(
                        &app.store,
                        id,
                        format,
                        &app.runbook,
                        impact,
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
    use drbot::chat::manifest;
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

mod plan {
    //! `drbot plan`: the manifests a launch would apply, built by the same code. With a backup
    //! named no cluster is needed; otherwise the configured backend chooses the backup.

    use std::sync::Arc;

    use anyhow::{Context, Result, bail};
    use chrono::{DateTime, SecondsFormat, Utc};
    use drbot::clock::SystemClock;
    use drbot::cluster::Cluster;
    use drbot::cluster::kube::Kube;
    use drbot::cluster::manifests::{self, DatabaseRestore};
    use drbot::cluster::restore_scope::RestoreScope;
    use drbot::cluster::sandbox::{Sandbox, SandboxConfig};
    use drbot::command::timestamp::{TimeInput, parse_timestamp, parse_zone};
    use drbot::config::Settings;
    use drbot::incident::{OperationKind, OperationSpec};

    use super::{DatabaseArgs, PlanCmd};

    pub const DEFAULT_POSTGRES_VERSION: &str = "16";
    pub const DEFAULT_INSTANCES: u32 = 1;
    pub const DEFAULT_VOLUME_SIZE: &str = "20Gi";
    pub const DEFAULT_VELERO_NAMESPACE: &str = "velero";

    /// The YAML to print and the lines that explain it.
    struct Planned {
        yaml: String,
        summary: Vec<String>,
    }

    pub async fn run(command: PlanCmd, settings: &Settings) -> Result<()> {
        let planned = match command {
            PlanCmd::Pitr { db, at } => {
                let (target, echo) = target(&at, settings, Utc::now())?;
                let mut planned = database(&db, Some(target), settings).await?;
                planned.summary.splice(0..0, echo);
                planned
            }
            PlanCmd::RestoreLatest { db } => database(&db, None, settings).await?,
            PlanCmd::InfraRestore {
                backup,
                exclude_namespaces,
                include_namespaces,
                velero_namespace,
                name,
            } => {
                infra(
                    backup,
                    exclude_namespaces,
                    include_namespaces,
                    velero_namespace,
                    name,
                    settings,
                )
                .await?
            }
        };
        for line in &planned.summary {
            eprintln!("# {line}");
        }
        print!("{}", planned.yaml);
        Ok(())
    }

    /// The same rules as `/dr pitr`: a zone is required unless safety.default_zone is set, and
    /// the target cannot be in the future.
    fn target(
        at: &str,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, Option<String>)> {
        let Some(input) = parse_timestamp(at) else {
            bail!(
                "`{at}` is not a timestamp. Use RFC 3339 (2026-02-08T09:55:00Z, 2026-02-08T09:55Z, 2026-02-08T10:55+01:00) or `2026-02-08 09:55 UTC`."
            );
        };
        let zone = settings.safety.default_zone.as_deref().and_then(parse_zone);
        let Some(t) = input.resolve(zone) else {
            let typed = match input {
                TimeInput::Naive(n) => n.format("%Y-%m-%dT%H:%M").to_string(),
                TimeInput::Zoned(z) => z.to_rfc3339(),
            };
            bail!(
                "`{input}` has no time zone. Add one: `{typed}Z` for UTC or an offset like `+01:00` (or configure safety.default_zone)."
            );
        };
        if t > now {
            bail!(
                "The PITR target {} is in the future (now {}). Pick the last known-good moment before the damage (SOP §8.2.1).",
                manifests::timestamp(t),
                now.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
        let echo = match (input, zone) {
            (TimeInput::Naive(_), Some(zone)) => Some(format!(
                "`{input}` has no zone; read it in the configured zone {zone}: {}",
                manifests::timestamp(t)
            )),
            _ => None,
        };
        Ok((t, echo))
    }

    /// A DNS label, as Kubernetes requires of namespace names.
    fn check_namespace(flag: &str, ns: &str) -> Result<()> {
        let ok = !ns.is_empty()
            && ns.len() <= 63
            && ns.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && ns.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && ns
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            bail!(
                "{flag} `{ns}` is not a namespace name (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
            );
        }
        Ok(())
    }

    /// A DNS subdomain, as Kubernetes requires of object names.
    fn check_object_name(flag: &str, name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !ok {
            bail!(
                "{flag} `{name}` is not an object name (lowercase letters, digits, '-' and '.', at most 253 characters)"
            );
        }
        Ok(())
    }

    /// The configured cluster backend, to plan against.
    struct Backend {
        cluster: Box<dyn Cluster>,
        /// `the sandbox` or `the kubernetes backend`, for messages.
        who: &'static str,
        /// First line of the summary: what was planned against.
        note: String,
        /// Namespace of the source SGClusters and their SGBackups, and where it is configured.
        database_namespace: (String, &'static str),
        /// What an infra restore on a data incident leaves out, and where it is configured.
        database_namespaces: (Vec<String>, &'static str),
        velero_namespace: String,
    }

    /// The backend `cluster.backend` names: the sandbox, or the Kubernetes cluster (connected
    /// to, never changed: a plan only reads).
    async fn backend(settings: &Settings) -> Result<Backend> {
        if settings.cluster.backend == "kubernetes" {
            let k = &settings.kubernetes;
            let cluster = Kube::connect(settings, Arc::new(SystemClock))
                .await
                .context("connecting to the Kubernetes cluster (cluster.backend = kubernetes)")?;
            let mut excluded = vec![k.database_namespace.clone()];
            for ns in &k.database_namespaces {
                if !excluded.contains(ns) {
                    excluded.push(ns.clone());
                }
            }
            let context = k
                .context
                .as_deref()
                .map(|c| format!(" (context {c})"))
                .unwrap_or_default();
            return Ok(Backend {
                cluster: Box::new(cluster),
                who: "the kubernetes backend",
                note: format!(
                    "planned against the Kubernetes cluster{context} (cluster.backend = kubernetes): read only, nothing was created or changed"
                ),
                database_namespace: (
                    k.database_namespace.clone(),
                    "kubernetes.database_namespace",
                ),
                database_namespaces: (
                    excluded,
                    "kubernetes.database_namespace and database_namespaces",
                ),
                velero_namespace: k.velero_namespace.clone(),
            });
        }
        let s = &settings.sandbox;
        let sandbox = Sandbox::new(
            SandboxConfig {
                speed: s.speed,
                state_file: (!s.state_file.is_empty()).then(|| s.state_file.clone().into()),
                database_namespaces: s.database_namespaces.clone(),
            },
            Arc::new(SystemClock),
        )
        .context("starting the sandbox cluster")?;
        Ok(Backend {
            cluster: Box::new(sandbox),
            who: "the sandbox",
            note: "SANDBOX: planned against the simulated cluster (cluster.backend = sandbox)"
                .into(),
            database_namespace: (
                s.database_namespaces
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "db".into()),
                "sandbox.database_namespaces",
            ),
            database_namespaces: (s.database_namespaces.clone(), "sandbox.database_namespaces"),
            velero_namespace: DEFAULT_VELERO_NAMESPACE.into(),
        })
    }

    async fn database(
        db: &DatabaseArgs,
        target: Option<DateTime<Utc>>,
        settings: &Settings,
    ) -> Result<Planned> {
        check_namespace("--namespace", &db.namespace)?;
        let target_namespace = db.target_namespace.as_deref().unwrap_or(&db.namespace);
        check_namespace("--target-namespace", target_namespace)?;
        let name = db
            .name
            .clone()
            .unwrap_or_else(|| manifests::restore_cluster_name(&db.cluster, target));
        manifests::check_cluster_name(&name)?;
        manifests::check_not_in_place(&name, target_namespace, &db.cluster, &db.namespace)?;
        let Some(backup) = &db.backup else {
            return database_in_cluster(db, target_namespace, &name, target, settings).await;
        };
        let volume_size = db.volume_size.as_deref().unwrap_or(DEFAULT_VOLUME_SIZE);
        manifests::check_volume_size(volume_size)?;
        let restore = DatabaseRestore {
            name: name.clone(),
            namespace: target_namespace.to_string(),
            source_namespace: db.namespace.clone(),
            source_cluster: db.cluster.clone(),
            backup: backup.clone(),
            postgres_version: db
                .postgres_version
                .clone()
                .unwrap_or_else(|| DEFAULT_POSTGRES_VERSION.into()),
            instances: db.instances.unwrap_or(DEFAULT_INSTANCES),
            volume_size: volume_size.to_string(),
            target,
        };
        let mut summary = vec![
            format!(
                "new SGCluster {target_namespace}/{name} restored from {}/{} (the source is not touched)",
                db.namespace, db.cluster
            ),
            format!("from backup {backup}"),
            match target {
                Some(t) => format!("recover to {}", manifests::timestamp(t)),
                None => "replay all archived WAL".into(),
            },
            format!(
                "PostgreSQL {}, {} instance{}, {}",
                restore.postgres_version,
                restore.instances,
                if restore.instances == 1 { "" } else { "s" },
                restore.volume_size
            ),
        ];
        if target_namespace != db.namespace {
            summary.push(format!(
                "copies SGBackup {backup} into {target_namespace} first: StackGres restores only from a backup in the cluster's own namespace"
            ));
        }
        summary.push(
            "no cluster consulted: that the backup exists and is Completed, has this PostgreSQL major, and that the target is in the recoverable window is not checked".into(),
        );
        summary.push(
            "no spec.configurations.backups: the new cluster archives no WAL and takes no backups until one is added (without --backup, the kubernetes backend gives it the source's)".into(),
        );
        Ok(Planned {
            yaml: manifests::to_yaml(&manifests::sgcluster_restore(&restore)),
            summary,
        })
    }

    async fn database_in_cluster(
        db: &DatabaseArgs,
        target_namespace: &str,
        name: &str,
        target: Option<DateTime<Utc>>,
        settings: &Settings,
    ) -> Result<Planned> {
        let given: Vec<&str> = [
            ("--postgres-version", db.postgres_version.is_some()),
            ("--instances", db.instances.is_some()),
            ("--volume-size", db.volume_size.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, set)| set.then_some(flag))
        .collect();
        if !given.is_empty() {
            bail!(
                "{} only apply with --backup: without it the new cluster takes the backup's PostgreSQL major and the source cluster's instances and volume size",
                given.join(", ")
            );
        }
        let backend = backend(settings).await?;
        let (source_namespace, configured_in) = &backend.database_namespace;
        if db.namespace != *source_namespace {
            bail!(
                "{}'s database clusters are in namespace {source_namespace} ({configured_in}), not {}",
                backend.who,
                db.namespace
            );
        }
        let kind = if target.is_some() {
            OperationKind::Pitr
        } else {
            OperationKind::RestoreLatest
        };
        let mut spec = OperationSpec::new("plan", kind, name);
        spec.cluster = Some(db.cluster.clone());
        spec.namespace = Some(target_namespace.to_string());
        spec.target = target;
        let plan = backend.cluster.plan(&spec).await?;
        let mut summary = vec![backend.note];
        summary.extend(plan.summary.iter().cloned());
        if plan.backup.is_none() {
            for line in &summary {
                eprintln!("# {line}");
            }
            bail!("nothing to apply: {}", plan.summary.join("; "));
        }
        if let (Some(t), Some(w)) = (target, plan.window)
            && !w.contains(t)
        {
            for line in &summary {
                eprintln!("# {line}");
            }
            bail!(
                "the PITR target {} is outside the recoverable window of {} ({} … {}): a launch would be refused",
                manifests::timestamp(t),
                db.cluster,
                manifests::timestamp(w.start),
                manifests::timestamp(w.end)
            );
        }
        Ok(Planned {
            yaml: plan.manifest,
            summary,
        })
    }

    async fn infra(
        backup: Option<String>,
        exclude: Vec<String>,
        include: Vec<String>,
        velero_namespace: Option<String>,
        name: Option<String>,
        settings: &Settings,
    ) -> Result<Planned> {
        let name = name.unwrap_or_else(|| manifests::infra_restore_name(backup.as_deref()));
        check_object_name("--name", &name)?;
        let velero_ns = velero_namespace.clone().unwrap_or_else(|| {
            if settings.cluster.backend == "kubernetes" {
                settings.kubernetes.velero_namespace.clone()
            } else {
                DEFAULT_VELERO_NAMESPACE.into()
            }
        });
        check_namespace("--velero-namespace", &velero_ns)?;
        let Some(backup) = backup else {
            let backend = backend(settings).await?;
            if velero_namespace.is_some_and(|ns| ns != backend.velero_namespace) {
                bail!(
                    "{}'s Velero runs in namespace {}, not {velero_ns}",
                    backend.who,
                    backend.velero_namespace
                );
            }
            let (db_namespaces, configured_in) = &backend.database_namespaces;
            let mut wanted = exclude.clone();
            wanted.sort();
            wanted.dedup();
            let mut configured = db_namespaces.clone();
            configured.sort();
            configured.dedup();
            let exclude_databases = !wanted.is_empty();
            if exclude_databases && wanted != configured {
                bail!(
                    "{} leaves out only its database namespaces ({}, from {configured_in}): pass --exclude-namespaces {}, or --backup NAME to plan any exclusion without a cluster",
                    backend.who,
                    db_namespaces.join(", "),
                    db_namespaces.join(",")
                );
            }
            let mut spec = OperationSpec::new("plan", OperationKind::InfraRestore, &name);
            spec.include_namespaces = include.clone();
            spec.exclude_database_namespaces = exclude_databases;
            let plan = backend.cluster.plan(&spec).await?;
            let mut summary = vec![backend.note];
            summary.extend(plan.summary);
            return Ok(Planned {
                yaml: plan.manifest,
                summary,
            });
        };
        let scope = RestoreScope::resolve(&include, &exclude, None)?;
        let doc = manifests::velero_restore(&name, &velero_ns, &backup, &scope);
        let mut summary = vec![format!(
            "Velero Restore {velero_ns}/{name} from backup {backup}"
        )];
        summary.extend(scope.summary());
        summary.push(manifests::VELERO_RESTORE_POLICY.into());
        summary.push(
            "no cluster consulted: that the backup exists and is Completed is not checked".into(),
        );
        Ok(Planned {
            yaml: manifests::to_yaml(&[("", doc)]),
            summary,
        })
    }
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

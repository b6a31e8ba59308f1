//! Real PostgreSQL WAL for the PITR tests: a throwaway PostgreSQL 15 cluster archives its
//! segments, a base backup is taken, rows are committed at times PostgreSQL records, and the
//! archive is laid out in the S3 stand-in the way `wal-g backup-push` / `wal-push` leave it.
//! Recoveries from the base backup then show what PostgreSQL itself can and cannot reach.
//!
//! `initdb` and `postgres` refuse to run as root, and the tests run as root in CI: every
//! PostgreSQL program then runs as an unprivileged user (`DRBOT_PG_USER`, default `postgres`,
//! which `.ci/run` creates when missing) through `runuser`, in directories that user owns.
//! Without the binaries the tests skip with a reason, unless `DRBOT_REQUIRE_PG_BINARIES` is
//! set (CI sets it): then they fail.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, DurationRound, SubsecRound, Utc};

use super::s3::S3Server;

pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
pub const REQUIRE_ENV: &str = "DRBOT_REQUIRE_PG_BINARIES";
const PROGRAMS: [&str; 5] = ["initdb", "pg_ctl", "pg_basebackup", "postgres", "psql"];

/// Upper bound for any one wait on PostgreSQL (start, archive, recovery); a guard against
/// hangs, never a timing assumption: every wait polls for the state it needs.
const PATIENCE: StdDuration = StdDuration::from_secs(60);
const POLL: StdDuration = StdDuration::from_millis(50);

/// Between the last commit and the segment switch: the archive's "upload time" (what drbot
/// used as the window's end) then lies clearly after the last commit (what PostgreSQL can
/// reach). Real time has to pass for PostgreSQL to stamp it; this makes data, it times nothing.
const QUIET_BEFORE_SWITCH: StdDuration = StdDuration::from_secs(2);

// ---- the binaries and the user ---------------------------------------------------------------

/// The PostgreSQL binaries and who runs them.
#[derive(Debug, Clone)]
pub struct Pg {
    bin: PathBuf,
    /// `Some` when running as root: the programs run as this user.
    user: Option<(String, u32, u32)>,
}

impl Pg {
    /// The binaries in `DRBOT_PG_BIN_DIR` (default [`DEFAULT_BIN_DIR`]); `None` (with the reason
    /// printed) when they or the user are missing, a panic instead when [`REQUIRE_ENV`] is set.
    pub fn find() -> Option<Pg> {
        match Pg::locate() {
            Ok(pg) => Some(pg),
            Err(why) if std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty()) => {
                panic!("{REQUIRE_ENV} is set but the real-PostgreSQL tests cannot run: {why}")
            }
            Err(why) => {
                eprintln!(
                    "skipping the real-PostgreSQL test: {why} (set {REQUIRE_ENV}=1 to fail instead)"
                );
                None
            }
        }
    }

    fn locate() -> Result<Pg, String> {
        let bin = std::env::var_os("DRBOT_PG_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR));
        for p in PROGRAMS {
            if !bin.join(p).is_file() {
                return Err(format!(
                    "{} not found (install PostgreSQL 15, or point DRBOT_PG_BIN_DIR at its bin directory)",
                    bin.join(p).display()
                ));
            }
        }
        let root = run(Command::new("id").arg("-u"))
            .map(|o| o.trim() == "0")
            .map_err(|e| format!("cannot tell who runs the tests: {e}"))?;
        if !root {
            return Ok(Pg { bin, user: None });
        }
        let name = std::env::var("DRBOT_PG_USER").unwrap_or_else(|_| "postgres".into());
        let id = |flag: &str| -> Result<u32, String> {
            run(Command::new("id").arg(flag).arg(&name))
                .map_err(|e| {
                    format!(
                        "running as root needs a user {name:?} for initdb ({e}); .ci/run creates it"
                    )
                })?
                .trim()
                .parse()
                .map_err(|e| format!("id {flag} {name}: {e}"))
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        if uid == 0 {
            return Err(format!(
                "DRBOT_PG_USER={name} is root, which initdb refuses"
            ));
        }
        Ok(Pg {
            bin,
            user: Some((name, uid, gid)),
        })
    }

    /// `program` from the PostgreSQL bin directory, as the unprivileged user when root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match &self.user {
            Some((name, _, _)) => {
                let mut c = Command::new("runuser");
                c.args(["-u", name, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        // The server's messages in English, whatever the machine's locale: tests match them.
        cmd.env("LC_ALL", "C").env("LANG", "C").env("TZ", "UTC");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Any other program, as the PostgreSQL user.
    fn as_user(&self, program: &str) -> Command {
        let mut cmd = match &self.user {
            Some((name, _, _)) => {
                let mut c = Command::new("runuser");
                c.args(["-u", name, "--", program]);
                c
            }
            None => Command::new(program),
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// A directory the PostgreSQL user owns.
    fn own(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("create dir");
        if let Some((_, uid, gid)) = &self.user {
            chown(dir, Some(*uid), Some(*gid)).expect("chown to the PostgreSQL user");
        }
    }
}

/// Run to completion; stdout on success, everything on failure.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out: Output = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} exited {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(POLL);
    }
}

// ---- one server --------------------------------------------------------------------------------

/// A server on a Unix socket in its own directory (no TCP: the machine's PostgreSQL owns
/// 5432); stopped (immediate) when dropped.
pub struct Server {
    pg: Pg,
    pub data: PathBuf,
    socket_dir: PathBuf,
    pub log: PathBuf,
    port: u16,
}

impl Server {
    fn new(pg: &Pg, data: PathBuf, socket_dir: PathBuf, log: PathBuf, port: u16) -> Server {
        pg.own(&socket_dir);
        Server {
            pg: pg.clone(),
            data,
            socket_dir,
            log,
            port,
        }
    }

    /// Start without waiting: a recovery may end in FATAL, which callers watch for.
    fn launch(&self) {
        run(self
            .pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-W", "start", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=",
                self.port,
                self.socket_dir.display()
            )))
        .expect("pg_ctl start");
    }

    fn start(&self) {
        self.launch();
        wait_for("the server to accept connections", || {
            self.query("SELECT 1").ok()
        });
    }

    /// One statement through psql; unaligned, tuples only.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        run(self
            .pg
            .command("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
            ])
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", "postgres", "-c", sql]))
        .map(|s| s.trim().to_string())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether a postmaster is running on the data directory.
    fn running(&self) -> bool {
        self.pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn stop(&self, mode: &str) {
        if !self.data.join("postmaster.pid").exists() {
            return;
        }
        let _ = self
            .pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop("immediate");
        // pg_ctl could not stop it: kill the postmaster it recorded.
        if let Some(pid) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string))
            && self.running()
        {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

// ---- the archive ----------------------------------------------------------------------------------

/// One committed row and its commit record's `xact_time`.
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    pub row: i32,
    pub xid: u32,
    pub at: DateTime<Utc>,
}

/// The base backup, with what `wal-g backup-push` would record of it.
#[derive(Debug, Clone)]
pub struct BaseBackup {
    pub dir: PathBuf,
    pub start_segment: String,
    pub start_lsn: u64,
    pub finish_lsn: u64,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub system_identifier: u64,
}

/// A file `archive_command` archived, and when (its copy's mtime: the upload time).
#[derive(Debug, Clone)]
pub struct Archived {
    pub name: String,
    pub path: PathBuf,
    pub at: DateTime<Utc>,
}

/// A stopped cluster's archive: base backup, archived WAL, the commits made after the backup.
pub struct Archive {
    pg: Pg,
    root: tempfile::TempDir,
    pub backup: BaseBackup,
    /// Every archived file, oldest first.
    pub files: Vec<Archived>,
    /// Rows 1, 2, 3 committed after the base backup, in order; the last is the last commit
    /// in the archive.
    pub commits: Vec<Commit>,
    /// The segment `pg_switch_wal()` closed after the last commit: the archive's last.
    pub last_segment: String,
}

impl Archive {
    pub fn last_commit(&self) -> Commit {
        *self.commits.last().expect("commits")
    }

    /// When the last segment was archived: the "upload time" of the archive's end.
    pub fn last_upload(&self) -> DateTime<Utc> {
        self.files
            .iter()
            .find(|f| f.name == self.last_segment)
            .expect("last segment archived")
            .at
    }

    fn next_dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

/// Ports only name the socket files in each server's own directory; distinct anyway.
static PORTS: Mutex<u16> = Mutex::new(55_400);

fn next_port() -> u16 {
    let mut p = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    *p += 1;
    *p
}

/// The archive, made once and shared by the tests running at the same time (the last to
/// finish removes it); `None` when PostgreSQL is not available (see [`Pg::find`]).
pub fn shared_archive() -> Option<Arc<Archive>> {
    static SHARED: Mutex<Weak<Archive>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = slot.upgrade() {
        return Some(a);
    }
    let archive = Arc::new(make_archive(Pg::find()?));
    *slot = Arc::downgrade(&archive);
    Some(archive)
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s.trim())
        .unwrap_or_else(|e| panic!("time {s:?}: {e}"))
        .with_timezone(&Utc)
}

/// `X/Y` as a number.
fn parse_lsn(s: &str) -> u64 {
    let (hi, lo) = s.split_once('/').expect("LSN X/Y");
    (u64::from_str_radix(hi, 16).expect("LSN") << 32) | u64::from_str_radix(lo, 16).expect("LSN")
}

/// `KEY: value` from a backup_label or backup history file.
fn label_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
}

fn archived_files(dir: &Path) -> Vec<Archived> {
    let mut files: Vec<Archived> = std::fs::read_dir(dir)
        .expect("archive dir")
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
        .map(|e| Archived {
            name: e.file_name().to_string_lossy().into_owned(),
            path: e.path(),
            at: e
                .metadata()
                .and_then(|m| m.modified())
                .expect("mtime")
                .into(),
        })
        .collect();
    files.sort_by(|a, b| (a.at, &a.name).cmp(&(b.at, &b.name)));
    files
}

/// initdb, archive, base backup, three commits after it, a quiet gap, a segment switch, stop.
pub fn make_archive(pg: Pg) -> Archive {
    let root = tempfile::Builder::new()
        .prefix("drbot-pitr-")
        .tempdir()
        .expect("tempdir");
    pg.own(root.path());
    let data = root.path().join("primary");
    let archive_dir = root.path().join("archive");
    pg.own(&archive_dir);
    run(pg
        .command("initdb")
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
            "-N",
            "-D",
        ])
        .arg(&data))
    .expect("initdb");
    // archive_command as `wal-g wal-push` is used: once per finished segment (and backup
    // history file), the file copied whole; the copy's mtime is its upload time.
    let conf = format!(
        "\nwal_level = replica\narchive_mode = on\narchive_command = 'test ! -f {a}/%f && cp %p {a}/%f.tmp && mv {a}/%f.tmp {a}/%f'\n\
         track_commit_timestamp = on\n\
         # No background transactions: autovacuum's ANALYZE would commit after ours.\n\
         autovacuum = off\nfsync = off\ntimezone = 'UTC'\nlog_timezone = 'UTC'\n",
        a = archive_dir.display()
    );
    append(&pg, &data.join("postgresql.conf"), &conf);
    let primary = Server::new(
        &pg,
        data.clone(),
        root.path().join("sock-primary"),
        root.path().join("primary.log"),
        next_port(),
    );
    primary.start();
    primary
        .query("CREATE TABLE pitr (n int PRIMARY KEY, note text NOT NULL)")
        .expect("create table");

    let base_dir = root.path().join("base");
    let started = Utc::now();
    // `-X none`: the backup holds no WAL, like wal-g's; recovery fetches it all from the
    // archive, and pg_basebackup waits until the backup's last segment is archived.
    run(pg
        .command("pg_basebackup")
        .args(["-X", "none", "-c", "fast", "-N", "-U", "postgres", "-h"])
        .arg(&primary.socket_dir)
        .arg("-p")
        .arg(primary.port.to_string())
        .arg("-D")
        .arg(&base_dir))
    .expect("pg_basebackup");
    let finished = Utc::now();
    let label = std::fs::read_to_string(base_dir.join("backup_label")).expect("backup_label");
    // START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
    let start = label_field(&label, "START WAL LOCATION");
    let (start_lsn, start_file) = start.split_once(" (file ").expect("start location");
    let start_segment = start_file.trim_end_matches(')').to_string();
    let start_lsn = parse_lsn(start_lsn);
    let history = wait_for("the backup history file to be archived", || {
        archived_files(&archive_dir)
            .into_iter()
            .find(|f| f.name.starts_with(&start_segment) && f.name.ends_with(".backup"))
    });
    let history = std::fs::read_to_string(&history.path).expect("backup history file");
    let stop = label_field(&history, "STOP WAL LOCATION");
    let finish_lsn = parse_lsn(stop.split_once(' ').map_or(stop, |(l, _)| l));
    let system_identifier = run(pg.command("pg_controldata").arg(&data))
        .expect("pg_controldata")
        .lines()
        .find_map(|l| l.strip_prefix("Database system identifier:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("system identifier");

    // Rows 1 and 2, then row 3 after a whole-second boundary: a target with whole seconds
    // (what `/dr pitr` takes) then falls between row 2's commit and row 3's.
    let mut commits = Vec::new();
    let mut commit = |row: i32| {
        let xid = primary
            .query(&format!(
                "INSERT INTO pitr VALUES ({row}, 'row {row}') RETURNING xmin"
            ))
            .expect("insert");
        commits.push(xid.parse::<u32>().expect("xid"));
    };
    commit(1);
    commit(2);
    let boundary = Utc::now().trunc_subsecs(0) + Duration::seconds(1);
    wait_for("the next whole second", || {
        (Utc::now() > boundary).then_some(())
    });
    commit(3);
    // The commit record's xact_time is the transaction's stop timestamp, and the same value
    // is what track_commit_timestamp stores (xact.c, RecordTransactionCommit, REL_15: 1409-1438).
    let rows = primary
        .query(
            "SELECT n, xmin, to_char(pg_xact_commit_timestamp(xmin) AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM pitr ORDER BY n",
        )
        .expect("commit times");
    let commits: Vec<Commit> = rows
        .lines()
        .zip(&commits)
        .map(|(line, xid)| {
            let mut f = line.split('|');
            let row = f.next().expect("n").parse().expect("n");
            let xmin: u32 = f.next().expect("xmin").parse().expect("xmin");
            assert_eq!(xmin, *xid);
            Commit {
                row,
                xid: xmin,
                at: parse_time(f.next().expect("time")),
            }
        })
        .collect();
    assert_eq!(commits.len(), 3, "{rows}");
    assert!(commits[0].at > finished && commits[1].at < boundary && commits[2].at > boundary);

    std::thread::sleep(QUIET_BEFORE_SWITCH);
    let last_segment = primary
        .query("SELECT pg_walfile_name(pg_switch_wal())")
        .expect("pg_switch_wal");
    wait_for("the last segment to be archived", || {
        archive_dir.join(&last_segment).exists().then_some(())
    });
    primary.stop("fast");
    drop(primary);

    let files = archived_files(&archive_dir);
    Archive {
        pg,
        backup: BaseBackup {
            dir: base_dir,
            start_segment,
            start_lsn,
            finish_lsn,
            started,
            finished,
            system_identifier,
        },
        files,
        commits,
        last_segment,
        root,
    }
}

/// Append to a file the PostgreSQL user owns.
fn append(pg: &Pg, file: &Path, text: &str) {
    let mut cmd = pg.as_user("sh");
    cmd.arg("-c")
        .arg("cat >> \"$0\"")
        .arg(file)
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("sh");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success(), "append to {file:?}");
}

// ---- wal-g's layout in S3 ---------------------------------------------------------------------

/// LZ4 frame as wal-g's lz4 compressor writes it (`internal/compression/lz4/compressor.go`:
/// `lz4.NewWriter` of github.com/pierrec/lz4): 4 MiB independent blocks, content checksum,
/// taken as pierrec/lz4's Writer defaults. Unverified: the stored wal-g go.mod pins an old
/// pierrec/lz4 commit and which version v3.0.9 uses was not checked; any conforming frame
/// decoder (wal-g's, drbot's) reads either block size or checksum choice.
pub fn lz4_frame(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max4MB)
        .block_mode(lz4_flex::frame::BlockMode::Independent)
        .content_checksum(true);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(data).expect("lz4 write");
    enc.finish().expect("lz4 finish")
}

pub fn lz4_unframe(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(data)
        .read_to_end(&mut out)
        .expect("lz4 frame");
    out
}

fn go_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Lay the archive out under `prefix` as wal-g does: every archived file as
/// `wal_005/<name>.lz4` at its archive time, the backup's `metadata.json`
/// (`ExtendedMetadataDto`) and then its stop sentinel (`BackupSentinelDtoV2`, uploaded last),
/// field names from wal-g `internal/databases/postgres/backup_sentinel_dto.go`. The base
/// backup's tar partitions are not uploaded: drbot never reads them, and the recoveries use
/// the backup directory itself.
pub fn upload_walg(s3: &S3Server, bucket: &str, prefix: &str, archive: &Archive) {
    let prefix = prefix.trim_end_matches('/');
    for f in &archive.files {
        let body = std::fs::read(&f.path).expect("archived file");
        s3.put(
            bucket,
            &format!("{prefix}/wal_005/{}.lz4", f.name),
            &lz4_frame(&body),
            f.at,
        );
    }
    let b = &archive.backup;
    let name = format!("base_{}", b.start_segment);
    let timeline = u32::from_str_radix(&b.start_segment[..8], 16).expect("timeline");
    let metadata = serde_json::json!({
        "start_time": go_time(b.started),
        "finish_time": go_time(b.finished),
        "date_fmt": "%Y-%m-%dT%H:%M:%S.%fZ",
        "hostname": "orders-0",
        "data_dir": "/var/lib/postgresql/data",
        "pg_version": 150000,
        "start_lsn": b.start_lsn,
        "finish_lsn": b.finish_lsn,
        "is_permanent": false,
        "system_identifier": b.system_identifier,
        "timeline": timeline,
        "uncompressed_size": 0,
        "compressed_size": 0,
    });
    s3.put(
        bucket,
        &format!("{prefix}/basebackups_005/{name}/metadata.json"),
        metadata.to_string().as_bytes(),
        b.finished,
    );
    let sentinel = serde_json::json!({
        "LSN": b.start_lsn,
        "Timeline": timeline,
        "PgVersion": 150000,
        "FinishLSN": b.finish_lsn,
        "SystemIdentifier": b.system_identifier,
        "UncompressedSize": 0,
        "CompressedSize": 0,
        "Spec": null,
        "Version": 2,
        "StartTime": go_time(b.started),
        "FinishTime": go_time(b.finished),
        "DateFmt": "%Y-%m-%dT%H:%M:%S.%fZ",
        "Hostname": "orders-0",
        "DataDir": "/var/lib/postgresql/data",
        "IsPermanent": false,
    });
    s3.put(
        bucket,
        &format!("{prefix}/basebackups_005/{name}_backup_stop_sentinel.json"),
        sentinel.to_string().as_bytes(),
        b.finished + Duration::milliseconds(1),
    );
}

/// Read `wal_005/` back through the S3 API and decompress each object into a new directory:
/// what `wal-g wal-fetch` hands `restore_command`. Recovering from it proves the uploaded
/// layout is the archive PostgreSQL replays, byte for byte.
pub async fn fetch_wal(s3: &S3Server, bucket: &str, prefix: &str, archive: &Archive) -> PathBuf {
    let dir = archive.next_dir(&format!("restore-{}", next_port()));
    archive.pg.own(&dir);
    let client = s3.client();
    let wal_prefix = format!("{}/wal_005/", prefix.trim_end_matches('/'));
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&wal_prefix)
        .send()
        .await
        .expect("list wal_005");
    let mut n = 0;
    for o in listed.contents() {
        let key = o.key().expect("key");
        let name = key[wal_prefix.len()..]
            .strip_suffix(".lz4")
            .unwrap_or_else(|| panic!("{key}: not lz4"));
        let body = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get object")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        std::fs::write(dir.join(name), lz4_unframe(&body)).expect("write fetched WAL");
        n += 1;
    }
    assert_eq!(n, archive.files.len(), "every archived file came back");
    dir
}

// ---- recovery -------------------------------------------------------------------------------------

/// How a recovery ended.
#[derive(Debug)]
pub enum Outcome {
    /// Reached the target and promoted: the server accepts writes.
    Promoted,
    /// The startup process failed; the line is the log's FATAL.
    Fatal(String),
}

pub struct Recovery {
    pub server: Server,
    pub outcome: Outcome,
}

/// `recovery_target_time` in the form PostgreSQL's timestamptz input takes.
pub fn pg_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// `timestamptz_to_str` as the server logs it (UTC): microseconds without trailing zeros.
pub fn pg_logged_time(t: DateTime<Utc>) -> String {
    let s = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}+00")
}

/// A copy of the base backup recovered with `restore_command` from `wal_dir` to
/// `recovery_target_time = target` (inclusive, the default), promoting at the target.
pub fn recover(archive: &Archive, wal_dir: &Path, target: DateTime<Utc>) -> Recovery {
    let n = next_port();
    let data = archive.next_dir(&format!("recovered-{n}"));
    run(archive
        .pg
        .as_user("cp")
        .arg("-a")
        .arg(&archive.backup.dir)
        .arg(&data))
    .expect("copy the base backup");
    let conf = format!(
        "\n# Recovery: the archive is read, never written.\narchive_mode = off\n\
         restore_command = 'cp {}/%f %p'\nrecovery_target_time = '{}'\n\
         recovery_target_action = 'promote'\n",
        wal_dir.display(),
        pg_time(target)
    );
    append(&archive.pg, &data.join("postgresql.conf"), &conf);
    append(&archive.pg, &data.join("recovery.signal"), "");
    let server = Server::new(
        &archive.pg,
        data,
        archive.next_dir(&format!("sock-{n}")),
        archive.next_dir(&format!("recovered-{n}.log")),
        n,
    );
    server.launch();
    // Read from the log alone: a connection attempt during recovery would only add FATALs
    // of its own ("the database system is starting up").
    let outcome = wait_for("the recovery to promote or fail", || {
        let log = server.log_text();
        if log.contains("database system is ready to accept connections") {
            return Some(Outcome::Promoted);
        }
        // The postmaster's last line after the startup process failed.
        if log.contains("database system is shut down") {
            let fatal: Vec<&str> = log.lines().filter(|l| l.contains("FATAL:")).collect();
            return Some(Outcome::Fatal(fatal.join("\n")));
        }
        None
    });
    Recovery { server, outcome }
}

/// Whole seconds: `t` rounded down, and the first whole second after it.
pub fn whole_seconds_around(t: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let floor = t
        .duration_trunc(Duration::seconds(1))
        .expect("truncate to seconds");
    (floor, floor + Duration::seconds(1))
}

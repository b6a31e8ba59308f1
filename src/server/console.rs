//! The console: a local channel on stdin/stdout, driving the same engine as Slack and Discord.
//! Works interactively and piped (scripts, tabletop drills, tests). Lines starting with `:`
//! are console controls: `:as <user>` switches the person typing, `:advance <10m|2h|30s>`
//! moves a simulated clock (`--clock`), `:tick` runs a scheduler pass. `#` starts a comment.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::app::{App, AppError, Reply};
use crate::chat::{ChatSink, DeliveryError, Outgoing};
use crate::clock::ManualClock;
use crate::incident::Actor;
use crate::incident::Caller;
use crate::incident::post::{Post, PostKind};
use futures_util::future::BoxFuture;

pub struct ConsoleOptions {
    pub channel: String,
    pub user: String,
    /// Users allowed to launch; `None` = everyone at the console.
    pub operators: Option<Vec<String>>,
    /// Where `/dr timeline export` writes its file.
    pub export_dir: std::path::PathBuf,
}

/// Posts delivered to the console, printed after each step.
#[derive(Default)]
struct ConsoleSink {
    printed: Mutex<Vec<(String, Post)>>,
    next_id: Mutex<u64>,
}

impl ChatSink for ConsoleSink {
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        let (channel, post) = (out.channel, out.post);
        Box::pin(async move {
            // `/dr status` shows the same; a terminal has nothing to pin or edit.
            if post.kind == PostKind::Status {
                return Ok("console-status".into());
            }
            let mut id = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *id += 1;
            self.printed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((channel.to_string(), post.clone()));
            Ok(format!("console-{id}"))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("console I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Parse `90s`, `15m`, `2h`.
fn parse_span(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0 && *n <= 1_000_000)?;
    match unit {
        "s" => Some(Duration::seconds(n)),
        "m" => Some(Duration::minutes(n)),
        "h" => Some(Duration::hours(n)),
        _ => None,
    }
}

pub struct Console<'a, W: Write> {
    app: &'a App,
    opts: ConsoleOptions,
    manual: Option<ManualClock>,
    out: W,
    sink: Arc<ConsoleSink>,
    user: String,
}

impl<'a, W: Write> Console<'a, W> {
    pub fn new(app: &'a App, opts: ConsoleOptions, manual: Option<ManualClock>, out: W) -> Self {
        let user = opts.user.clone();
        Console {
            app,
            opts,
            manual,
            out,
            sink: Arc::new(ConsoleSink::default()),
            user,
        }
    }

    /// Read lines until end of input; print replies and this channel's posts as they come.
    pub async fn run<R: AsyncBufRead + Unpin>(mut self, input: R) -> Result<(), ConsoleError> {
        let mut lines = input.lines();
        // Posts and progress keep coming while nobody types, when time is real.
        let mut ticker = tokio::time::interval(StdDuration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.step().await?;
        loop {
            tokio::select! {
                line = lines.next_line() => match line? {
                    Some(line) => {
                        self.line(&line).await?;
                        self.step().await?;
                    }
                    None => break,
                },
                _ = ticker.tick(), if self.manual.is_none() => self.step().await?,
            }
        }
        self.step().await?;
        Ok(())
    }

    async fn line(&mut self, line: &str) -> Result<(), ConsoleError> {
        let line = strip_comment(line).trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        if let Some(control) = line.strip_prefix(':') {
            return self.control(control).await;
        }
        let caller = Caller {
            actor: Actor::new("console", &self.user, &self.user),
            operator: self
                .opts
                .operators
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|o| o == &self.user)),
        };
        let reply = match self.app.handle(&self.opts.channel, &caller, line).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "command failed");
                Reply::Private(crate::app::COULD_NOT_RECORD.into())
            }
        };
        match reply {
            Reply::Private(text) | Reply::Public(text) => {
                writeln!(self.out, "{}", plain_mentions(&text))?
            }
            Reply::File { name, content } => {
                let path = self.opts.export_dir.join(&name);
                std::fs::write(&path, &content)?;
                writeln!(
                    self.out,
                    "Wrote {} ({} bytes).",
                    path.display(),
                    content.len()
                )?;
            }
        }
        self.out.flush()?;
        Ok(())
    }

    async fn control(&mut self, control: &str) -> Result<(), ConsoleError> {
        let mut words = control.split_whitespace();
        match (words.next(), words.next()) {
            (Some("as"), Some(user)) => {
                self.user = user.trim_start_matches('@').to_string();
                writeln!(self.out, "(now typing as {})", self.user)?;
            }
            (Some("advance"), Some(span)) => match (self.manual.clone(), parse_span(span)) {
                (Some(clock), Some(by)) => {
                    // Step minute by minute so the scheduler sees every due time on the way.
                    let mut left = by;
                    while left > Duration::zero() {
                        let step = left.min(Duration::minutes(1));
                        clock.advance(step);
                        left -= step;
                        self.step().await?;
                    }
                    writeln!(
                        self.out,
                        "(clock {})",
                        crate::incident::fmt_time(crate::clock::Clock::now(&clock))
                    )?;
                }
                (None, _) => writeln!(
                    self.out,
                    "(:advance needs a simulated clock: start with --clock <time>)"
                )?,
                (_, None) => writeln!(self.out, "(:advance takes a span like 30s, 15m or 2h)")?,
            },
            (Some("tick"), None) => self.step().await?,
            _ => writeln!(
                self.out,
                "(console controls: :as <user>, :advance <span>, :tick)"
            )?,
        }
        self.out.flush()?;
        Ok(())
    }

    /// A scheduler pass and delivery of this channel's posts.
    async fn step(&mut self) -> Result<(), ConsoleError> {
        self.app.tick().await?;
        self.app.deliver_reach().await?;
        self.app
            .deliver_to(&*self.sink, Some(&self.opts.channel))
            .await?;
        if let Some(statuspage) = &self.app.statuspage {
            self.app
                .deliver_to(
                    &**statuspage,
                    Some(crate::features::comms::STATUSPAGE_CHANNEL),
                )
                .await?;
        }
        let posts =
            std::mem::take(&mut *self.sink.printed.lock().unwrap_or_else(|e| e.into_inner()));
        for (channel, post) in posts {
            let text = plain_mentions(&post.plain());
            let mut lines = text.lines();
            writeln!(
                self.out,
                "[#{channel}] {}",
                lines.next().unwrap_or_default()
            )?;
            for l in lines {
                writeln!(self.out, "  {l}")?;
            }
        }
        self.out.flush()?;
        Ok(())
    }
}

/// The line without a trailing comment: ` # …` outside quotes, as in the README's examples
/// (`/dr freeze bad migration   # preview P1`). A `#` inside a word (`issue #42`) stays.
pub fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(close) if c == close || (close == '”' && c == '"') => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '“' => quote = Some('”'),
                '‘' => quote = Some('’'),
                '#' if previous.is_whitespace()
                    && line[i + 1..].chars().next().is_none_or(char::is_whitespace) =>
                {
                    return &line[..i];
                }
                _ => {}
            },
        }
        previous = c;
    }
    line
}

/// `<@alice>` → `@alice`, `<!here>` → `@here`: the console has no mention markup.
fn plain_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let is_mention = matches!(tail.as_bytes().get(1), Some(b'@' | b'!'));
        match tail.find('>').filter(|_| is_mention) {
            Some(end) => {
                out.push('@');
                out.push_str(&tail[2..end]);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn mentions_are_plain() {
        assert_eq!(
            super::plain_mentions("<!here> hi <@alice>, <@bob>!"),
            "@here hi @alice, @bob!"
        );
        assert_eq!(super::plain_mentions("a < b <@x"), "a < b <@x");
    }

    use super::*;

    #[test]
    fn trailing_comments_are_dropped_outside_quotes_and_words() {
        assert_eq!(
            strip_comment("/dr freeze bad migration   # preview P1").trim_end(),
            "/dr freeze bad migration"
        );
        assert_eq!(strip_comment("# a whole comment"), "");
        assert_eq!(
            strip_comment("/dr note fixed issue #42"),
            "/dr note fixed issue #42"
        );
        assert_eq!(
            strip_comment("/dr note \"a # in quotes\" # gone").trim_end(),
            "/dr note \"a # in quotes\""
        );
        assert_eq!(strip_comment("/dr update ok #"), "/dr update ok ");
    }

    #[test]
    fn spans() {
        assert_eq!(parse_span("15m"), Some(Duration::minutes(15)));
        assert_eq!(parse_span("2h"), Some(Duration::hours(2)));
        assert_eq!(parse_span("30s"), Some(Duration::seconds(30)));
        assert_eq!(parse_span("m"), None);
        assert_eq!(parse_span("5d"), None);
        assert_eq!(parse_span("-5m"), None);
    }
}

//! The queue page: rendered from a template (the built-in one, or a room's own) with the
//! visitor's language, updated in place by `assets/queue.js`, and still working without
//! JavaScript (a meta refresh of the page first asked for).
//!
//! - [`texts`]   one TOML file of texts per language; `?lang=` and `Accept-Language`
//! - [`assets`]  the CSS and script, embedded, served from `/_anteroom/assets/`
//! - [`clock`]   times for the page (RFC 3339 and a wall-clock time)
//!
//! Templates are minijinja with HTML auto-escaping; the variables are documented in
//! `docs/TEMPLATES.md`. A room's template is compiled when the config is checked, so a
//! mistake stops the start with the template's name and line.

pub(crate) mod assets;
pub(crate) mod texts;

use super::status::{self, StatusBody};
use crate::config::RoomConfig;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use texts::{Catalog, Texts};

const DEFAULT_TEMPLATE: &str = include_str!("default.html");
const DEFAULT_NAME: &str = "default.html";

/// Everything a template can use (see docs/TEMPLATES.md).
#[derive(Serialize)]
struct Context<'a> {
    lang: &'a str,
    t: &'a Texts,
    room: &'a str,
    title: &'a str,
    state: &'a str,
    headline: &'a str,
    position: Option<u64>,
    ahead: Option<u64>,
    ahead_text: String,
    queue_length: u64,
    queue_length_text: String,
    eta_seconds: Option<u64>,
    eta_text: String,
    progress_percent: u64,
    opens_at: Option<&'a str>,
    opens_at_local: String,
    scheduled_text: String,
    updated_at: String,
    updated_hms: String,
    return_to: &'a str,
    poll_after_ms: u64,
    refresh_seconds: u64,
    head: String,
    hooks: String,
    scripts: String,
}

/// What the page shows besides the status object.
pub(crate) struct PageInput<'a> {
    pub title: &'a str,
    pub lang: &'a str,
    /// The visitor's first position in this place (for the progress bar), if known.
    pub first_position: Option<u64>,
    /// The room's opening time as configured, for the countdown text.
    pub opens_at: Option<&'a str>,
}

#[derive(Debug)]
pub(crate) struct Pages {
    env: Environment<'static>,
    catalog: Catalog,
    /// The template of each room, by room index.
    templates: Vec<String>,
}

impl Pages {
    /// Compiles the built-in template and every room's own. Errors name the room, the
    /// file and the line.
    pub(crate) fn new(rooms: &[RoomConfig]) -> Result<Self, Vec<String>> {
        let mut env = environment();
        let mut problems = Vec::new();
        if let Err(e) = env.add_template(DEFAULT_NAME, DEFAULT_TEMPLATE) {
            problems.push(format!("built-in queue page: {}", describe(&e)));
        }
        let mut templates = Vec::new();
        for room in rooms {
            let Some(path) = &room.template else {
                templates.push(DEFAULT_NAME.to_owned());
                continue;
            };
            let name = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => match env.add_template_owned(name.clone(), text) {
                    Ok(()) => templates.push(name),
                    Err(e) => problems.push(format!("rooms[{}].template: {name}: {}", room.name, describe(&e))),
                },
                Err(e) => problems.push(format!("rooms[{}].template: cannot read {name}: {e}", room.name)),
            }
        }
        if problems.is_empty() {
            Ok(Self { env, catalog: Catalog::load(), templates })
        } else {
            Err(problems)
        }
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The page for `status`, in the room's template (falling back to the built-in one if
    /// the room's fails at render time, e.g. on a filter misused with a value).
    pub(crate) fn render(&self, room_index: usize, status: &StatusBody, input: &PageInput<'_>) -> String {
        let context = minijinja::Value::from(minijinja::value::Serde(self.context(status, input)));
        let name = self.templates.get(room_index).map_or(DEFAULT_NAME, String::as_str);
        let rendered = self.env.get_template(name).and_then(|t| t.render(&context));
        match rendered {
            Ok(html) => html,
            Err(e) => {
                tracing::warn!(template = name, error = %describe(&e), "queue page template failed; using the built-in one");
                self.env.get_template(DEFAULT_NAME).and_then(|t| t.render(&context)).unwrap_or_default()
            }
        }
    }

    fn context<'a>(&'a self, s: &'a StatusBody, input: &'a PageInput<'a>) -> Context<'a> {
        let t = self.catalog.get(input.lang);
        let text = |key: &str| t.get(key).cloned().unwrap_or_default();
        let fill = |key: &str, pairs: &[(&str, String)]| {
            pairs.iter().fold(text(key), |acc, (name, value)| acc.replace(&format!("{{{name}}}"), value))
        };
        let ahead = s.position.map(|p| p.saturating_sub(1));
        let ahead_text = match ahead {
            None => String::new(),
            Some(0) => text("ahead_none"),
            Some(1) => text("ahead_one"),
            Some(n) => fill("ahead_many", &[("n", n.to_string())]),
        };
        let eta_text = match status::eta_minutes_range(s.eta_seconds) {
            None => text("eta_unknown"),
            Some((0, _)) => text("eta_soon"),
            Some((low, high)) => fill("eta_range", &[("low", low.to_string()), ("high", high.to_string())]),
        };
        let progress_percent = match (input.first_position, s.position) {
            (Some(first), Some(now)) if first > 1 => (100 * first.saturating_sub(now) / (first - 1)).min(100),
            _ => 0,
        };
        let now = crate::time::unix_secs();
        let opens_at_local = input.opens_at.unwrap_or_default().to_owned();
        let refresh_seconds = (s.poll_after_ms / 1000).clamp(2, 30);
        let head = format!(
            "<noscript><meta http-equiv=\"refresh\" content=\"{refresh_seconds}\"></noscript>\n\
             <link rel=\"stylesheet\" href=\"{}\">",
            assets::url("queue.css")
        );
        let hooks = format!(
            "data-anteroom-room=\"{}\" data-anteroom-return-to=\"{}\" data-anteroom-poll-after-ms=\"{}\" \
             data-anteroom-first-position=\"{}\"{}",
            escape(&s.room),
            escape(&s.return_to),
            s.poll_after_ms,
            input.first_position.unwrap_or(0),
            s.opens_at.as_deref().map(|at| format!(" data-anteroom-opens-at=\"{}\"", escape(at))).unwrap_or_default(),
        );
        // JSON inside <script>: `<` escaped so no text can close the element.
        let texts_json = serde_json::to_string(t).unwrap_or_default().replace('<', "\\u003c");
        let scripts = format!(
            "<script type=\"application/json\" id=\"anteroom-texts\">{texts_json}</script>\n\
             <script src=\"{}\" defer></script>",
            assets::url("queue.js")
        );
        Context {
            lang: input.lang,
            t,
            room: &s.room,
            title: input.title,
            state: s.state.as_str(),
            headline: t.get(&format!("headline_{}", s.state.as_str())).map_or("", String::as_str),
            position: s.position,
            ahead,
            ahead_text,
            queue_length: s.queue_length,
            queue_length_text: match s.queue_length {
                1 => text("waiting_one"),
                n => fill("waiting_total", &[("n", n.to_string())]),
            },
            eta_seconds: s.eta_seconds,
            eta_text,
            progress_percent,
            opens_at: s.opens_at.as_deref(),
            scheduled_text: fill("scheduled_body", &[("time", opens_at_local.clone())]),
            opens_at_local,
            updated_at: crate::time::rfc3339(now),
            updated_hms: crate::time::wall_clock(now),
            return_to: &s.return_to,
            poll_after_ms: s.poll_after_ms,
            refresh_seconds,
            head,
            hooks,
            scripts,
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env
}

fn describe(e: &minijinja::Error) -> String {
    let detail = e.detail().map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.line() {
        Some(line) => format!("line {line}: {detail}"),
        None => detail,
    }
}

/// HTML-escapes text for element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;

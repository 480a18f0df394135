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

use super::status::{self, StatusBody, VisitorState};
use crate::config::RoomConfig;
use crate::problem::Problem;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use texts::{Catalog, Texts};

const DEFAULT_TEMPLATE: &str = include_str!("default.html");
const DEFAULT_NAME: &str = "default.html";
/// anteroom's own error pages, in the queue page's style.
const PROBLEM_TEMPLATE: &str = include_str!("problem.html");
const PROBLEM_NAME: &str = "problem.html";

/// Everything a template can use (see docs/TEMPLATES.md).
#[derive(Serialize)]
struct Context<'a> {
    lang: &'a str,
    t: &'a Texts,
    room: &'a str,
    title: &'a str,
    state: &'a str,
    headline: String,
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
    /// `scheduled_text` with the time in a `<time>` the page's script writes in the
    /// buyer's language.
    scheduled_html: String,
    updated_at: String,
    updated_hms: String,
    time_zone: Option<&'a str>,
    tab_title: String,
    queue_id: Option<&'a str>,
    place_lost: bool,
    /// An operator's message to the line (plain text, escaped like every variable).
    message: Option<&'a str>,
    /// State `refused`: why, in the visitor's language.
    refused_text: String,
    leave_url: String,
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
    /// The room's opening time (unix ms, and as configured), for the countdown text.
    pub opens_at: Option<(u64, &'a str)>,
    /// The room's time zone for the times shown.
    pub zone: Option<&'a crate::time::Zone>,
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
        if let Err(e) = env.add_template(PROBLEM_NAME, PROBLEM_TEMPLATE) {
            problems.push(format!("built-in error page: {}", describe(&e)));
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

    /// The page of one of anteroom's own error answers. `retry_after`: seconds until a
    /// retry may work; `refresh`: the page retries by itself after that many seconds (a
    /// repeatable request).
    pub(crate) fn problem(
        &self,
        problem: Problem,
        lang: &str,
        retry_after: Option<u64>,
        refresh: Option<u64>,
    ) -> String {
        let catalog = &self.catalog;
        let stem = problem.texts();
        let retry_text = match (refresh, retry_after) {
            (Some(n), _) => Some(catalog.counted(lang, "error_retry_auto", n, &n.to_string())),
            (None, Some(n)) => Some(catalog.counted(lang, "error_retry", n, &n.to_string())),
            (None, None) => None,
        };
        let context = minijinja::context! {
            lang,
            heading => catalog.text(lang, &format!("error_{stem}_title")),
            body => catalog.text(lang, &format!("error_{stem}_body")),
            retry_text,
            refresh_seconds => refresh,
            code => problem.code(),
            code_label => catalog.text(lang, "error_code"),
            status => problem.status().as_u16(),
            stylesheet => assets::url("queue.css"),
        };
        let rendered = self.env.get_template(PROBLEM_NAME).and_then(|t| t.render(context));
        rendered.unwrap_or_else(|_| format!("{}\n", problem.message()))
    }

    /// The page a browser gets after leaving the line without the page's script (a plain
    /// form post): what happened, in the buyer's language.
    pub(crate) fn left(&self, lang: &str) -> String {
        let context = minijinja::context! {
            lang,
            heading => self.catalog.text(lang, "headline_left"),
            body => self.catalog.text(lang, "left_body"),
            stylesheet => assets::url("queue.css"),
        };
        let rendered = self.env.get_template(PROBLEM_NAME).and_then(|t| t.render(context));
        rendered.unwrap_or_else(|_| self.catalog.text(lang, "left_body"))
    }

    fn context<'a>(&'a self, s: &'a StatusBody, input: &'a PageInput<'a>) -> Context<'a> {
        let (catalog, lang) = (&self.catalog, input.lang);
        let t = catalog.get(lang);
        let text = |key: &str| catalog.text(lang, key);
        let fill = |key: &str, pairs: &[(&str, String)]| {
            pairs.iter().fold(text(key), |acc, (name, value)| acc.replace(&format!("{{{name}}}"), value))
        };
        let counted = |key: &str, n: u64| catalog.counted(lang, key, n, &n.to_string());
        let ahead = s.position.map(|p| p.saturating_sub(1));
        let ahead_text = match ahead {
            None => String::new(),
            Some(0) => text("ahead_none"),
            Some(n) => counted("ahead", n),
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
        let opens_at_local = match (input.opens_at, input.zone) {
            (Some((ms, _)), Some(zone)) => zone.date_time(ms),
            (Some((_, written)), None) => written.to_owned(),
            (None, _) => String::new(),
        };
        let tab_title = match (s.state, s.position) {
            (VisitorState::Waiting, Some(position)) => counted("tab_waiting", position),
            (VisitorState::Admitted | VisitorState::Open, _) => text("tab_admitted"),
            _ => format!("{{title}} — {}", text("page_title")),
        }
        .replace("{title}", input.title);
        let refresh_seconds = (s.poll_after_ms / 1000).clamp(2, 30);
        // Without scripts the page refreshes itself to follow the line; a challenge cannot
        // be solved that way, so that page says so instead.
        let refresh = if s.state == VisitorState::Challenge {
            String::new()
        } else {
            format!("<noscript><meta http-equiv=\"refresh\" content=\"{refresh_seconds}\"></noscript>\n")
        };
        let head = format!("{refresh}<link rel=\"stylesheet\" href=\"{}\">", assets::url("queue.css"));
        let optional = |name: &str, value: Option<&str>| {
            value.map(|v| format!(" data-anteroom-{name}=\"{}\"", escape(v))).unwrap_or_default()
        };
        let challenge = s.challenge.as_ref().map_or_else(String::new, |c| {
            format!(
                " data-anteroom-challenge-prefix=\"{}\" data-anteroom-challenge-difficulty=\"{}\" \
                 data-anteroom-challenge-expires-at=\"{}\" data-anteroom-challenge-worker=\"{}\"",
                escape(&c.prefix),
                c.difficulty,
                c.expires_at,
                assets::url("pow.js")
            )
        });
        let hooks = format!(
            "data-anteroom-room=\"{}\" data-anteroom-title=\"{}\" data-anteroom-return-to=\"{}\" \
             data-anteroom-poll-after-ms=\"{}\" data-anteroom-first-position=\"{}\"{}{}{challenge}",
            escape(&s.room),
            escape(input.title),
            escape(&s.return_to),
            s.poll_after_ms,
            input.first_position.unwrap_or(0),
            optional("opens-at", s.opens_at.as_deref()),
            optional("time-zone", input.zone.map(|z| z.name.as_str())),
        );
        let texts_json = catalog.script_texts(lang);
        let scripts = format!(
            "<script type=\"application/json\" id=\"anteroom-texts\">{texts_json}</script>\n\
             <script src=\"{}\" defer></script>",
            assets::url("queue.js")
        );
        Context {
            lang,
            t,
            room: &s.room,
            title: input.title,
            state: s.state.as_str(),
            headline: text(&format!("headline_{}", s.state.as_str())),
            position: s.position,
            ahead,
            ahead_text,
            queue_length: s.queue_length,
            queue_length_text: counted("waiting", s.queue_length),
            eta_seconds: s.eta_seconds,
            eta_text,
            progress_percent,
            opens_at: s.opens_at.as_deref(),
            scheduled_text: fill("scheduled_body", &[("time", opens_at_local.clone())]),
            scheduled_html: {
                let body = text("scheduled_body");
                let (before, after) = body.split_once("{time}").unwrap_or((&body, ""));
                format!(
                    "{}<time data-anteroom=\"opens-at\" datetime=\"{}\">{}</time>{}",
                    escape(before),
                    escape(s.opens_at.as_deref().unwrap_or_default()),
                    escape(&opens_at_local),
                    escape(after)
                )
            },
            opens_at_local,
            updated_at: crate::time::rfc3339(now),
            updated_hms: input.zone.map_or_else(|| crate::time::wall_clock(now), |zone| zone.wall_clock(now)),
            time_zone: input.zone.map(|z| z.name.as_str()),
            tab_title,
            queue_id: s.queue_id.as_deref(),
            place_lost: s.place_lost,
            message: s.message.as_deref(),
            refused_text: s.refused_reason.map(|r| text(&format!("refused_{}", r.label()))).unwrap_or_default(),
            leave_url: format!("{}leave?room={}", super::RESERVED_PREFIX, s.room),
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

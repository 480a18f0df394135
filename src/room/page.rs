//! The queue page a waiting browser gets: position, line length, and a small script that
//! polls `/_anteroom/status` and returns the visitor to the page they asked for when their
//! turn comes. Without JavaScript a meta refresh reloads the page they asked for, which
//! admits them just the same. (The polished, translated page is a later step.)

use super::status::StatusBody;

pub fn render(title: &str, status: &StatusBody) -> String {
    let position = status.position.map_or_else(|| "…".to_owned(), |p| p.to_string());
    let eta = status.eta_seconds.map_or_else(String::new, |s| format!("<p>Estimated wait: about {}.</p>", minutes(s)));
    let headline = match status.state {
        "paused" => "The line is paused for a moment",
        "scheduled" => "The sale has not opened yet",
        "closed" => "The sale is closed",
        _ => "You are in line",
    };
    let refresh_secs = (status.poll_after_ms / 1000).clamp(2, 30);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — waiting room</title>
<noscript><meta http-equiv="refresh" content="{refresh_secs}"></noscript>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}}
.big{{font-size:3rem;font-weight:700;margin:.2rem 0}}</style></head>
<body><main id="anteroom" data-room="{room}" data-return-to="{return_to}" data-poll-after-ms="{poll}">
<h1>{title}</h1>
<h2 id="headline">{headline}</h2>
<p>Your place in line</p>
<p class="big" id="position" aria-live="polite">{position}</p>
<p><span id="queue-length">{queue_length}</span> people are waiting.</p>
{eta}
<p>Your place is kept. There is no need to refresh: this page will take you to the shop by itself when it is your turn.</p>
</main>
<script>
(function () {{
  var main = document.getElementById("anteroom");
  var room = main.dataset.room, back = main.dataset.returnTo;
  var wait = Number(main.dataset.pollAfterMs) || 1000, failures = 0;
  function poll() {{
    fetch("/_anteroom/status?room=" + encodeURIComponent(room) + "&return_to=" + encodeURIComponent(back),
          {{ headers: {{ "Accept": "application/json" }}, credentials: "same-origin", cache: "no-store" }})
      .then(function (r) {{ return r.json(); }})
      .then(function (s) {{
        failures = 0;
        if (s.state === "admitted" || s.state === "open") {{ location.replace(s.return_to || back); return; }}
        document.getElementById("position").textContent = s.position == null ? "…" : s.position;
        document.getElementById("queue-length").textContent = s.queue_length;
        setTimeout(poll, s.poll_after_ms || wait);
      }})
      .catch(function () {{ failures += 1; setTimeout(poll, Math.min(30000, wait * Math.pow(2, failures))); }});
  }}
  setTimeout(poll, wait);
}})();
</script>
</body></html>
"#,
        title = escape(title),
        room = escape(&status.room),
        return_to = escape(&status.return_to),
        poll = status.poll_after_ms,
        queue_length = status.queue_length,
    )
}

fn minutes(seconds: u64) -> String {
    match seconds {
        0..=59 => "less than a minute".to_owned(),
        60..=119 => "1 minute".to_owned(),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// HTML-escapes text for element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
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
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_the_place_and_escapes_what_it_echoes() {
        let status = StatusBody {
            room: "sale".into(),
            state: "waiting",
            position: Some(17),
            queue_length: 230,
            eta_seconds: Some(125),
            poll_after_ms: 1_170,
            opens_at: None,
            return_to: "/tickets?a=1&b=\"<x>".into(),
        };
        let html = render("Big <Show>", &status);
        assert!(html.contains(r#"id="position" aria-live="polite">17<"#));
        assert!(html.contains(">230<"));
        assert!(html.contains("about 3 minutes"));
        assert!(html.contains("Big &lt;Show&gt;"));
        assert!(html.contains(r#"data-return-to="/tickets?a=1&amp;b=&quot;&lt;x&gt;""#));
    }
}

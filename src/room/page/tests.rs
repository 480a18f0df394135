use super::*;

fn status(state: &str, position: Option<u64>) -> StatusBody {
    StatusBody {
        room: "sale".into(),
        state: serde_json::from_value(serde_json::Value::from(state)).expect("a visitor state"),
        position,
        queue_length: 230,
        eta_seconds: Some(300),
        poll_after_ms: 4_000,
        opens_at: None,
        return_to: "/tickets?a=1&b=\"<x>".into(),
        queue_id: Some("K7QF-3M2P".into()),
        place_lost: false,
        message: None,
        challenge: None,
        challenge_refused: None,
        refused_reason: None,
    }
}

fn input(lang: &str) -> PageInput<'_> {
    PageInput { title: "Big <Show>", lang, first_position: Some(41), opens_at: None, zone: None }
}

#[test]
fn the_page_shows_place_people_ahead_estimate_and_progress() {
    let pages = Pages::new(&[]).unwrap();
    let html = pages.render(0, &status("waiting", Some(17)), &input("en"));
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains("Big &lt;Show&gt;"), "titles are escaped");
    assert!(html.contains(">17</p>"));
    assert!(html.contains("16 people are ahead of you."));
    assert!(html.contains("230 people are waiting."));
    assert!(html.contains("about 4–6 minutes"));
    assert!(html.contains(r#"aria-valuenow="60""#), "from 41st to 17th: 60 %");
    assert!(html.contains(r#"data-anteroom-return-to="/tickets?a=1&amp;b=&quot;&lt;x&gt;""#));
    assert!(html.contains(r#"<meta http-equiv="refresh" content="4">"#));
    assert!(html.contains("aria-live=\"polite\""));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external hosts");
}

#[test]
fn every_state_has_its_own_words_in_each_language() {
    let pages = Pages::new(&[]).unwrap();
    for (lang, expected) in [
        ("en", ["You are in line", "The sale opens soon", "The line is paused", "The sale is closed"]),
        (
            "de",
            ["Sie sind in der Warteschlange", "Der Verkauf beginnt bald", "kurz angehalten", "Der Verkauf ist beendet"],
        ),
    ] {
        for (state, words) in ["waiting", "scheduled", "paused", "closed"].into_iter().zip(expected) {
            let html = pages.render(0, &status(state, Some(3)), &input(lang));
            assert!(html.contains(words), "{lang} {state}: {words}");
        }
    }
}

#[test]
fn the_opening_time_is_shown_with_the_offset_it_was_configured_with() {
    let pages = Pages::new(&[]).unwrap();
    let opens_at = crate::config::OpensAt::parse("2026-12-01T11:00:00+01:00").unwrap();
    let mut scheduled = status("scheduled", None);
    scheduled.opens_at = Some(opens_at.as_str().to_owned());
    let when = Some((opens_at.unix_ms(), opens_at.display()));
    let html = pages.render(0, &scheduled, &PageInput { opens_at: when, ..input("en") });
    assert!(html.contains("2026-12-01 11:00 +01:00"), "{html}");
    assert!(html.contains(r#"data-anteroom-opens-at="2026-12-01T11:00:00+01:00""#));
    assert!(html.contains(r#"<time data-anteroom="opens-at" datetime="2026-12-01T11:00:00+01:00">"#), "{html}");
}

#[test]
fn a_room_time_zone_writes_the_opening_time_in_it() {
    let pages = Pages::new(&[]).unwrap();
    let opens_at = crate::config::OpensAt::parse("2026-12-01T10:00:00Z").unwrap();
    let mut scheduled = status("scheduled", None);
    scheduled.opens_at = Some(opens_at.as_str().to_owned());
    let zone = crate::time::Zone::named("America/New_York").unwrap();
    let input =
        PageInput { opens_at: Some((opens_at.unix_ms(), opens_at.display())), zone: Some(&zone), ..input("en") };
    let html = pages.render(0, &scheduled, &input);
    assert!(html.contains("2026-12-01 05:00 EST"), "{html}");
    assert!(html.contains(r#"data-anteroom-time-zone="America/New_York""#));
    assert!(html.contains(" EST</time>"), "last updated in the room's zone too");
}

#[test]
fn the_tab_title_shows_the_place_and_the_page_shows_the_queue_id_and_a_lost_place() {
    let pages = Pages::new(&[]).unwrap();
    let html = pages.render(0, &status("waiting", Some(17)), &input("en"));
    assert!(html.contains("<title>#17 in line · Big &lt;Show&gt;</title>"), "{html}");
    assert!(html.contains(r#"data-anteroom="queue-id">K7QF-3M2P<"#));
    assert!(html.contains("_anteroom&#x2f;leave?room=sale\""), "{html}");
    assert!(html.contains(r#"data-anteroom="place-lost" role="alert" hidden>"#), "nothing lost: hidden");
    let mut lost = status("waiting", Some(230));
    lost.place_lost = true;
    let html = pages.render(0, &lost, &input("pl"));
    assert!(html.contains(r#"data-anteroom="place-lost" role="alert">Zbyt długo"#), "{html}");
    assert!(html.contains("Przed Tobą jest 229 osób."));
    assert!(html.contains("Czeka 230 osób."));
    assert!(html.contains("<title>Miejsce 230 · Big &lt;Show&gt;</title>"));
}

#[test]
fn texts_inside_the_script_cannot_close_it() {
    let pages = Pages::new(&[]).unwrap();
    let html = pages.render(0, &status("waiting", Some(1)), &input("en"));
    let json_start = html.find(r#"id="anteroom-texts">"#).unwrap();
    let json_end = html[json_start..].find("</script>").unwrap();
    assert!(!html[json_start + 20..json_start + json_end].contains('<'));
}

#[test]
fn a_broken_room_template_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sale.html");
    std::fs::write(&path, "<p>fine</p>\n<p>{{ position </p>\n").unwrap();
    let text = format!(
        "[origin]\nurl = \"http://a:1\"\n[[rooms]]\nname = \"sale\"\npaths = [\"/t\"]\ntemplate = \"{}\"\n",
        path.display()
    );
    let config = crate::Config::from_toml(&text, []).expect("the file itself is read with the pages");
    let Err(problems) = Pages::new(&config.rooms) else { panic!("a broken template must be refused") };
    let problem = &problems[0];
    assert!(problem.starts_with(&format!("rooms[sale].template: {}: line 2:", path.display())), "{problem}");
}

#[test]
fn the_page_and_its_assets_stay_light() {
    let pages = Pages::new(&[]).unwrap();
    let html = pages.render(0, &status("waiting", Some(1_234_567)), &input("de"));
    let total = html.len() + assets::total_bytes();
    assert!(total < 50 * 1024, "page weight {total} bytes");
    assert!(!html.contains("error_busy_title"), "the error pages' texts stay out of the queue page");
    assert!(html.contains("\"leave_confirm\""), "the script's texts are in");
}

#[test]
fn every_error_page_is_in_every_language_and_says_its_code() {
    use crate::problem::Problem;
    let pages = Pages::new(&[]).unwrap();
    for lang in ["en", "de", "fr", "es", "it", "nl", "pl", "pt"] {
        for problem in Problem::ALL {
            let html = pages.problem(problem, lang, Some(5), Some(5));
            assert!(html.contains(&format!(r#"<html lang="{lang}">"#)), "{lang} {problem:?}");
            assert!(html.contains(&format!("<code>{}</code> ({})", problem.code(), problem.status().as_u16())));
            assert!(html.contains(r#"<meta http-equiv="refresh" content="5">"#), "a repeatable request retries");
            let english = pages.problem(problem, "en", Some(5), Some(5));
            assert!(lang == "en" || html != english, "{lang} {problem:?} is translated");
            assert!(!html.contains("http://") && !html.contains("https://"), "no external hosts");
        }
    }
    let post = pages.problem(Problem::ShopBusy, "pl", Some(2), None);
    assert!(!post.contains("http-equiv=\"refresh\""), "a POST is not repeated behind the buyer's back");
    assert!(post.contains("Spróbuj ponownie za 2 sekundy."), "{post}");
    assert!(pages.problem(Problem::ShopBusy, "pl", Some(5), Some(5)).contains("za 5 sekund."));
}

//! A room with `challenge = "proof-of-work"`: nobody gets a place (nor walks into an open
//! room) without a solution to a challenge bound to their visitor id and the room; a
//! solution buys one place, once; junk is refused before the store is asked.

mod support;

use anteroom::config::{ChallengeMode, ConfigBuilder, Difficulty};
use support::origin::Origin;
use support::visitor::{challenge_of, Visitor};
use support::{metric, Gateway};

/// `sale` on `/tickets` (one admission a minute: the first solver walks in, the rest wait)
/// and `vip` on `/vip`, both behind a challenge of `bits`.
fn config(origin: &Origin, bits: u8) -> ConfigBuilder {
    let challenge = move |room: &mut anteroom::config::RoomConfig| {
        room.admit_per_minute = 1;
        room.challenge = ChallengeMode::ProofOfWork;
        room.challenge_difficulty = Difficulty::Bits(bits);
    };
    Gateway::config(&origin.url()).room("sale", &["/tickets"], challenge).room("vip", &["/vip"], challenge)
}

async fn gateway(bits: u8) -> (Origin, Gateway) {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, bits)).await;
    (origin, gw)
}

/// The first buyer solves and takes the one admission; `sale` has a line from here on.
async fn busy(gw: &Gateway) {
    assert_eq!(Visitor::json(gw.addr).solve_and_join("sale").await["state"], "admitted");
}

async fn numbers(gw: &Gateway) -> (u64, u64) {
    let text = gw.metrics().await;
    (metric(&text, "anteroom_queue_length{room=\"sale\"}"), metric(&text, "anteroom_joins_total{room=\"sale\"}"))
}

fn challenges(text: &str, result: &str) -> u64 {
    metric(text, &format!("anteroom_challenges_total{{room=\"sale\",result=\"{result}\"}}"))
}

#[tokio::test]
async fn a_client_solves_the_challenge_then_waits_in_line_and_is_admitted() {
    let (origin, gw) = gateway(8).await;
    let mut buyer = Visitor::json(gw.addr);
    let status = buyer.status("sale").await;
    assert_eq!(status["state"], "challenge", "{status}");
    let challenge = &status["challenge"];
    assert_eq!((challenge["algorithm"].as_str(), challenge["difficulty"].as_u64()), (Some("sha256"), Some(8)));
    let expires_at = challenge["expires_at"].as_u64().unwrap();
    assert!(expires_at > anteroom::time::unix_ms() + 60_000, "{status}");
    assert!(status["queue_id"].is_string(), "support can find the buyer from the first answer on");
    assert_eq!(buyer.status("sale").await["challenge"], *challenge, "a poll hands out the same challenge");

    let joined = buyer.solve_and_join("sale").await;
    assert_eq!(joined["state"], "admitted", "the room was open: in at once: {joined}");
    assert!(buyer.cookie("anteroom_t_sale").is_some());
    assert_eq!(buyer.get("/tickets/1").await.status, 200);
    assert_eq!(origin.count(), 1);

    let mut second = Visitor::json(gw.addr);
    let joined = second.solve_and_join("sale").await;
    assert_eq!((joined["state"].as_str(), joined["position"].as_u64()), (Some("waiting"), Some(1)), "{joined}");
    assert!(joined.get("challenge").is_none(), "a place needs no more challenge: {joined}");
    assert_eq!(second.status("sale").await["position"], 1, "polls keep the place without a new proof");
    let text = gw.metrics().await;
    assert_eq!((challenges(&text, "issued"), challenges(&text, "solved")), (2, 2), "{text}");
}

#[tokio::test]
async fn without_a_solution_nobody_gets_a_place_or_walks_into_the_open_room() {
    let (origin, gw) = gateway(8).await;
    // The page path without cookies, a thousand times: a challenge each, nothing stored.
    for _ in 0..200 {
        let answer = Visitor::json(gw.addr).get("/tickets/1").await;
        assert_eq!(answer.header("x-anteroom-state"), Some("challenge"));
    }
    // With the queue cookie, but no solution: the page, the status, a bare join.
    let mut bot = Visitor::json(gw.addr);
    for _ in 0..3 {
        assert_eq!(bot.get("/tickets/1").await.header("x-anteroom-state"), Some("challenge"));
        assert_eq!(bot.status("sale").await["state"], "challenge");
        let bare = bot.post("/_anteroom/join?room=sale").await;
        assert_eq!((bare.status.as_u16(), bare.header("x-anteroom-state")), (200, Some("challenge")));
    }
    assert_eq!(origin.count(), 0, "the open room let nobody in without a proof");
    assert_eq!(numbers(&gw).await, (0, 0));
}

#[tokio::test]
async fn wrong_malformed_and_borrowed_solutions_buy_nothing() {
    let (_origin, gw) = gateway(12).await;
    busy(&gw).await;
    let mut honest = Visitor::json(gw.addr);
    let status = honest.status("sale").await;
    let (prefix, bits) = challenge_of(&status);
    let nonce = anteroom::solve_challenge(&prefix, bits);

    let mut bot = Visitor::json(gw.addr);
    bot.status("sale").await;
    let cases = [
        ("wrong", format!("pow={}", nonce.wrapping_add(1)), "wrong"),
        ("not a number", "pow=12ab".to_owned(), "malformed"),
        ("empty", "pow=".to_owned(), "malformed"),
        ("another visitor's challenge", format!("pow={nonce}&challenge={prefix}"), "forged"),
        ("a made-up challenge", format!("pow={nonce}&challenge=c1:99999999999999:1:AAAAAAAAAAAAAAAAAAAAAA:"), "forged"),
    ];
    for (case, form, refused) in cases {
        let answer = bot.join_with("sale", &form.replace(':', "%3A")).await;
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        // A wrong nonce can be right by chance (1 in 2^12): then skip that case.
        if case == "wrong" && body["state"] == "waiting" {
            continue;
        }
        assert_eq!(answer.status, 400, "{case}: {body}");
        assert_eq!((body["state"].as_str(), body["challenge_refused"].as_str()), (Some("challenge"), Some(refused)));
        assert!(body["challenge"]["prefix"].is_string(), "{case}: a challenge to solve instead: {body}");
    }
    assert_eq!(numbers(&gw).await, (0, 0), "no place for any of them");
    // The honest visitor's own solution still holds: the bot's use of it spent nothing.
    let joined = honest.join_with("sale", &format!("pow={nonce}")).await;
    assert_eq!(joined.status, 200, "{}", joined.body_text());
    let text = gw.metrics().await;
    assert!(challenges(&text, "failed") >= 4, "{text}");
}

#[tokio::test]
async fn a_solution_is_worth_nothing_in_another_room() {
    let (_origin, gw) = gateway(8).await;
    busy(&gw).await;
    let mut buyer = Visitor::json(gw.addr);
    let (prefix, bits) = challenge_of(&buyer.status("vip").await);
    buyer.status("sale").await;
    let nonce = anteroom::solve_challenge(&prefix, bits);
    let answer = buyer.join_with("sale", &format!("pow={nonce}&challenge={}", prefix.replace(':', "%3A"))).await;
    assert_eq!(answer.status, 400, "{}", answer.body_text());
    assert!(answer.body_text().contains("\"challenge_refused\":\"forged\""), "{}", answer.body_text());
    assert_eq!(numbers(&gw).await, (0, 0));
}

#[tokio::test]
async fn a_solution_buys_one_place_and_a_replay_after_leaving_buys_none() {
    let (_origin, gw) = gateway(8).await;
    busy(&gw).await;
    let mut buyer = Visitor::json(gw.addr);
    let (prefix, bits) = challenge_of(&buyer.status("sale").await);
    let form = format!("pow={}&challenge={}", anteroom::solve_challenge(&prefix, bits), prefix.replace(':', "%3A"));
    let cookies = buyer.cookies.clone();
    assert_eq!(buyer.join_with("sale", &form).await.status, 200);
    let again = buyer.join_with("sale", &form).await;
    assert_eq!(again.status, 200, "a retried join reports the place: {}", again.body_text());
    assert!(again.body_text().contains("\"position\":1"), "{}", again.body_text());
    assert_eq!(buyer.post("/_anteroom/leave?room=sale").await.status, 200);

    // The same visitor's cookies from before, the same solution: spent.
    let mut replay = Visitor::json(gw.addr);
    replay.cookies = cookies;
    let answer = replay.join_with("sale", &form).await;
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer.status, 200, "an honest page can send a spent solution: {body}");
    assert_eq!((body["state"].as_str(), body["challenge_refused"].as_str()), (Some("challenge"), Some("replayed")));
    assert_ne!(body["challenge"]["prefix"].as_str(), Some(prefix.as_str()), "a new challenge to solve");
    assert_eq!(numbers(&gw).await, (0, 1), "one place was bought, and given up");
    assert_eq!(challenges(&gw.metrics().await, "replayed"), 1);
}

#[tokio::test]
async fn the_queue_page_explains_the_challenge_and_that_it_needs_scripts() {
    let (_origin, gw) = gateway(8).await;
    let mut browser = Visitor::new(gw.addr);
    let page = browser.get("/tickets/1").await;
    assert_eq!(page.header("x-anteroom-state"), Some("challenge"));
    let html = page.body_text();
    assert!(html.contains("data-anteroom-challenge-prefix=\"c1:"), "{html}");
    assert!(html.contains("data-anteroom-challenge-difficulty=\"8\""), "{html}");
    assert!(html.contains("turn on JavaScript"), "the no-script explanation: {html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "refreshing cannot solve a challenge: {html}");
    assert!(browser.cookie("anteroom_c_sale").is_some());
}

#[tokio::test]
async fn the_auto_difficulty_is_light_in_a_calm_room() {
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.challenge = ChallengeMode::ProofOfWork;
    });
    let gw = Gateway::built(config).await;
    let status = Visitor::json(gw.addr).status("sale").await;
    assert_eq!(status["challenge"]["difficulty"], 12, "{status}");
}

/// The number behind docs/BENCHMARKS.md ("Proof of work"): honest joins per second with
/// the challenge off and on, the gateway's side only (each on-visitor's solution is
/// found before the clock starts, as a buyer's page finds it before it joins).
/// `cargo test --release --test proof_of_work -- --ignored --nocapture measure_honest_joins`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_honest_joins() {
    const BUYERS: usize = 8_000;
    const LANES: usize = 16;
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        // Alternating which goes first, so that neither always meets a warmer machine.
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for gated in order {
            let origin = Origin::start().await;
            // The buyers' connections wait while the others are set up (longer when they
            // solve): no server timeout may close them meanwhile, or the timed joins would
            // pay for new connections in one room and not the other.
            let patient = |limits: &mut anteroom::config::Limits| {
                limits.header_read_timeout = anteroom::config::HumanDuration(std::time::Duration::from_secs(600));
                limits.idle_timeout = anteroom::config::HumanDuration(std::time::Duration::from_secs(600));
            };
            let config = Gateway::config(&origin.url()).limits(patient).room("sale", &["/tickets"], |room| {
                room.admit_per_minute = 1;
                room.max_active_users = 1;
                if gated {
                    room.challenge = ChallengeMode::ProofOfWork;
                    room.challenge_difficulty = Difficulty::Bits(12);
                }
            });
            let gw = Gateway::built(config).await;
            // Each buyer's first call (the cookie, or the cookie and the challenge) and,
            // in the gated room, the solution: ready before the clock starts.
            let mut lanes: Vec<Vec<(Visitor, String)>> = Vec::new();
            for _ in 0..LANES {
                let mut lane = Vec::new();
                for _ in 0..BUYERS / LANES {
                    let mut buyer = Visitor::json(gw.addr);
                    let status = buyer.status("sale").await;
                    let form = if gated {
                        let (prefix, bits) = challenge_of(&status);
                        format!("pow={}", anteroom::solve_challenge(&prefix, bits))
                    } else {
                        String::new()
                    };
                    lane.push((buyer, form));
                }
                lanes.push(lane);
            }
            let started = std::time::Instant::now();
            let cpu_before = cpu_seconds();
            let tasks: Vec<_> = lanes
                .into_iter()
                .map(|lane| {
                    tokio::spawn(async move {
                        for (mut buyer, form) in lane {
                            // As the queue page sends it: in the query (a body would
                            // often cost the gateway a second read and wake-up).
                            let answer = buyer.post(&format!("/_anteroom/join?room=sale&{form}")).await;
                            assert_eq!(answer.status, 200);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let rate = BUYERS as f64 / started.elapsed().as_secs_f64();
            let cpu_us = (cpu_seconds() - cpu_before) * 1e6 / BUYERS as f64;
            let (_, joins) = numbers(&gw).await;
            assert_eq!(joins as usize, BUYERS - 1, "every buyer has a place (the first walked in)");
            let label = if gated { "on (12 bits)" } else { "off" };
            println!("round {round}, challenge {label}: {rate:.0} joins/s, {cpu_us:.0} µs CPU per join (test client included)");
        }
    }
}

/// CPU time this process has used (user and system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

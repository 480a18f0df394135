//! What each buyer does once inside: a small TOML list of requests with think times.
//!
//! ```toml
//! [[step]]
//! path = "/events/1"          # the first step is the protected page the buyer opens
//! think = "3s"                # pause before the next step
//! [[step]]
//! method = "POST"
//! path = "/checkout?event=1"
//! body = "seats=2"
//! ```

use crate::config::parse_duration;
use http::Method;
use serde::Deserialize;
use std::time::Duration;

/// At most this many steps: a script is a buyer's few clicks, not a load test of its own.
const MAX_STEPS: usize = 50;

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    pub think: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    step: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    think: Option<String>,
}

impl Script {
    /// The sample shops' buyer: the event page, a look around, the checkout.
    pub fn sample() -> Self {
        let step = |method: Method, path: &str, think: u64| Step {
            method,
            path: path.to_owned(),
            body: None,
            think: Duration::from_secs(think),
        };
        Self {
            steps: vec![
                step(Method::GET, "/events/1", 2),
                step(Method::GET, "/events/1?seats", 2),
                step(Method::POST, "/checkout?event=1", 0),
            ],
        }
    }

    /// Reads a script; problems come as `step[N].key: problem` lines.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("script: {}", e.message()))?;
        if file.step.is_empty() || file.step.len() > MAX_STEPS {
            return Err(format!("script: give 1 to {MAX_STEPS} [[step]] entries"));
        }
        let mut steps = Vec::new();
        for (i, raw) in file.step.into_iter().enumerate() {
            let method = match raw.method.as_deref().unwrap_or("GET").to_ascii_uppercase().as_str() {
                "GET" => Method::GET,
                "POST" => Method::POST,
                "PUT" => Method::PUT,
                "PATCH" => Method::PATCH,
                "DELETE" => Method::DELETE,
                "HEAD" => Method::HEAD,
                other => {
                    return Err(format!("step[{i}].method: `{other}` (use GET, POST, PUT, PATCH, DELETE or HEAD)"))
                }
            };
            if !raw.path.starts_with('/') || raw.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("step[{i}].path: `{}` must start with / and hold no spaces", raw.path));
            }
            if raw.path.parse::<http::Uri>().is_err() {
                return Err(format!("step[{i}].path: `{}` is not a valid path", raw.path));
            }
            let think = match raw.think.as_deref() {
                None => Duration::ZERO,
                Some(text) => parse_duration(text).map_err(|e| format!("step[{i}].think: {e}"))?,
            };
            if think > Duration::from_secs(600) {
                return Err(format!("step[{i}].think: at most 10m"));
            }
            steps.push(Step { method, path: raw.path, body: raw.body, think });
        }
        if steps[0].method != Method::GET {
            return Err("step[0].method: the first step is the page a buyer opens: GET".to_owned());
        }
        Ok(Self { steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_reads_steps_and_refuses_what_it_cannot_send() {
        let script = Script::parse(
            "[[step]]\npath = \"/events/1\"\nthink = \"2s\"\n[[step]]\nmethod = \"post\"\npath = \"/checkout\"\nbody = \"a=1\"\n",
        )
        .unwrap();
        assert_eq!(script.steps.len(), 2);
        assert_eq!((script.steps[0].think, &script.steps[1].method), (Duration::from_secs(2), &Method::POST));
        for (text, says) in [
            ("", "script:"),
            ("[[step]]\n", "script:"),
            ("[[step]]\npath = \"events\"\n", "step[0].path"),
            ("[[step]]\npath = \"/a b\"\n", "step[0].path"),
            ("[[step]]\npath = \"/a\"\nmethod = \"TRACE\"\n", "step[0].method"),
            ("[[step]]\npath = \"/a\"\nthink = \"soon\"\n", "step[0].think"),
            ("[[step]]\npath = \"/a\"\nthink = \"1h\"\n", "step[0].think"),
            ("[[step]]\nmethod = \"POST\"\npath = \"/a\"\n", "step[0].method"),
            ("[[step]]\npath = \"/a\"\ncolour = 1\n", "script:"),
        ] {
            let problem = Script::parse(text).expect_err(text);
            assert!(problem.starts_with(says), "{text:?}: {problem}");
        }
    }
}

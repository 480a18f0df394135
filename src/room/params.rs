//! The join call's parameters (`pow`, `challenge`, `enqueue_token`): from the query, or a
//! small form (`application/x-www-form-urlencoded`) or JSON body.

use super::status::query_param;

/// Longest join body read: a nonce, a prefix and a token are well under this.
pub(super) const MAX_BODY: usize = 8 * 1024;

#[derive(Debug, Default)]
pub(super) struct JoinParams {
    query: Option<String>,
    form: Option<String>,
    json: Option<serde_json::Value>,
}

impl JoinParams {
    pub(super) fn read(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Self {
        let body = std::str::from_utf8(body).ok().filter(|b| !b.trim().is_empty());
        let json = content_type.is_some_and(|t| t.starts_with("application/json"));
        Self {
            query: query.map(str::to_owned),
            form: body.filter(|_| !json).map(str::to_owned),
            json: body.filter(|_| json).and_then(|b| serde_json::from_str(b).ok()),
        }
    }

    /// A parameter from the query, else the body; a JSON number is taken as its text.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref(), name).or_else(|| query_param(self.form.as_deref(), name)).or_else(|| {
            match self.json.as_ref()?.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        })
    }
}

//! A client's cookie jar: what `Set-Cookie` headers set and clear.

use std::collections::BTreeMap;

/// Takes the answer's cookies into `jar` (`Max-Age=0` removes one). A line that is not
/// `name=value[; attributes]` is an error naming it; the lines before it are taken.
pub fn take_cookies(jar: &mut BTreeMap<String, String>, headers: &http::HeaderMap) -> Result<(), String> {
    for line in headers.get_all(http::header::SET_COOKIE) {
        let line = line.to_str().map_err(|_| format!("set-cookie is not text: {line:?}"))?;
        let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
        let (name, value) = pair.split_once('=').ok_or_else(|| format!("set-cookie without name=value: {line}"))?;
        if attributes.contains("Max-Age=0") {
            jar.remove(name);
        } else {
            jar.insert(name.to_owned(), value.to_owned());
        }
    }
    Ok(())
}

//! Script replies, read by name: every script answers with its field names first, then
//! one row of values per item (a `visit` call answers for several visitors). A field the
//! gateway needs and the script did not send is a protocol error naming both.

use super::health::{ControlReason, OriginHealth};
use super::types::StoreFault;
use redis::Value;

pub(super) struct Rows {
    script: &'static str,
    names: Vec<String>,
    values: Vec<Value>,
}

impl Rows {
    pub(super) fn parse(script: &'static str, reply: Value) -> Result<Self, StoreFault> {
        let bad = |what: String| StoreFault::Protocol(format!("{script}: {what}"));
        let Value::Array(items) = reply else { return Err(bad(format!("expected an array, got {reply:?}"))) };
        let mut items = items.into_iter();
        let names = match items.next() {
            Some(Value::Array(names)) => names
                .iter()
                .map(|name| text(name).ok_or_else(|| bad(format!("bad field name {name:?}"))))
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(bad(format!("expected the field names first, got {other:?}"))),
        };
        let values: Vec<Value> = items.collect();
        if names.is_empty() || values.len() % names.len() != 0 {
            return Err(bad(format!("{} values for {} fields", values.len(), names.len())));
        }
        Ok(Self { script, names, values })
    }

    pub(super) fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.values.chunks(self.names.len()).map(move |values| Row { rows: self, values })
    }

    /// The only row of a reply about one thing (a room's tick or stats).
    pub(super) fn single(&self) -> Result<Row<'_>, StoreFault> {
        match self.values.len() == self.names.len() {
            true => Ok(Row { rows: self, values: &self.values }),
            false => Err(StoreFault::Protocol(format!("{}: expected one row", self.script))),
        }
    }
}

pub(super) struct Row<'a> {
    rows: &'a Rows,
    values: &'a [Value],
}

impl Row<'_> {
    pub(super) fn value(&self, name: &str) -> Result<&Value, StoreFault> {
        let at = self.rows.names.iter().position(|n| n == name);
        at.map(|i| &self.values[i])
            .ok_or_else(|| StoreFault::Protocol(format!("{}: no field `{name}` in the reply", self.rows.script)))
    }

    pub(super) fn int(&self, name: &str) -> Result<i64, StoreFault> {
        match self.value(name)? {
            Value::Int(n) => Ok(*n),
            other => Err(StoreFault::Protocol(format!("{}: `{name}` is {other:?}, not an integer", self.rows.script))),
        }
    }

    /// A count or time: never negative.
    pub(super) fn count(&self, name: &str) -> Result<u64, StoreFault> {
        Ok(self.int(name)?.max(0) as u64)
    }

    pub(super) fn flag(&self, name: &str) -> Result<bool, StoreFault> {
        Ok(self.int(name)? == 1)
    }

    /// A name the script got from the gateway (`ControlReason::as_str`).
    pub(super) fn text(&self, name: &str) -> Result<String, StoreFault> {
        let value = self.value(name)?;
        text(value).ok_or_else(|| self.unexpected(name, value))
    }

    pub(super) fn reason(&self, name: &str) -> Result<ControlReason, StoreFault> {
        let value = self.value(name)?;
        text(value).as_deref().and_then(ControlReason::parse).ok_or_else(|| self.unexpected(name, value))
    }

    pub(super) fn health(&self, name: &str) -> Result<OriginHealth, StoreFault> {
        let value = self.value(name)?;
        text(value).as_deref().and_then(OriginHealth::parse).ok_or_else(|| self.unexpected(name, value))
    }

    fn unexpected(&self, name: &str, value: &Value) -> StoreFault {
        StoreFault::Protocol(format!("{}: unexpected `{name}` {value:?}", self.rows.script))
    }

    pub(super) fn limit(&self, name: &str) -> Result<u32, StoreFault> {
        Ok(self.int(name)?.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

/// A bulk or simple string as text.
pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Value {
        Value::Array(names.iter().map(|n| Value::BulkString(n.as_bytes().to_vec())).collect())
    }

    #[test]
    fn fields_are_read_by_name_in_any_order() {
        let reply =
            Value::Array(vec![names(&["seq", "state"]), Value::Int(7), Value::Int(1), Value::Int(8), Value::Int(4)]);
        let rows = Rows::parse("visit", reply).unwrap();
        let read: Vec<(i64, i64)> = rows.rows().map(|r| (r.int("state").unwrap(), r.int("seq").unwrap())).collect();
        assert_eq!(read, [(1, 7), (4, 8)]);
    }

    #[test]
    fn a_missing_or_misshapen_field_names_the_script_and_field() {
        let reply = Value::Array(vec![names(&["state"]), Value::Int(1)]);
        let rows = Rows::parse("visit", reply).unwrap();
        let problem = rows.single().unwrap().int("position").unwrap_err().to_string();
        assert!(problem.contains("visit: no field `position`"), "{problem}");
        let ragged = Value::Array(vec![names(&["a", "b"]), Value::Int(1)]);
        assert!(Rows::parse("tick", ragged).is_err());
        assert!(Rows::parse("tick", Value::Int(1)).is_err());
    }

    #[test]
    fn state_codes_round_trip() {
        for state in crate::store::QueueState::ALL {
            assert_eq!(crate::store::QueueState::from_code(state.code()), Some(state));
        }
        assert_eq!(crate::store::QueueState::from_code(0), None);
    }
}

//! The neutral parameters of the shared statements: `Value` (borrowed, as a statement takes
//! it), `ToValue` (what can be one), `params!` (a statement's list of them) and `Owned` (a
//! value read back whole, to pass back to the database).

use crate::model::{Time, Transition};

/// A parameter of a statement.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Null,
    Int(i64),
    /// SQLite keeps it as an integer (0 or 1), PostgreSQL as a `boolean`.
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
    /// A list of texts: a JSON array on SQLite (read with `json_each`), a `text[]` on
    /// PostgreSQL.
    Texts(&'a [&'a str]),
    /// A list of integers: a JSON array on SQLite, a `bigint[]` on PostgreSQL.
    Ints(&'a [i64]),
}

/// A value a statement takes as a parameter.
pub trait ToValue {
    fn value(&self) -> Value<'_>;
}

impl ToValue for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToValue::value)
    }
}

impl ToValue for i64 {
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl ToValue for bool {
    fn value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}

impl ToValue for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for Time {
    fn value(&self) -> Value<'_> {
        Value::Int(self.0)
    }
}

impl ToValue for Transition {
    fn value(&self) -> Value<'_> {
        Value::Text(self.as_str())
    }
}

/// A statement's parameters, in order: `params![id, now]`.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::sql::ToValue::value(&$v)),*][..]
    };
}
pub(crate) use params;

/// A value read back whole, of whatever type its column has (a key passed back to the
/// database).
#[derive(Clone, Debug)]
pub enum Owned {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

impl ToValue for Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(n) => Value::Int(*n),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Text(t) => Value::Text(t),
            Owned::Blob(b) => Value::Blob(b),
        }
    }
}

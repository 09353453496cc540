//! The filters, tests and functions manifest templates can use.
//!
//! berth builds minijinja without its builtins (about 160 KiB of the binary)
//! and registers this smaller set: what a manifest needs to pick values per
//! device, convert `--var` strings, and walk lists and maps. docs/templating.md
//! lists them.

use std::cmp::Ordering;

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Value};

/// The most items `range()` makes: a loop that large is a mistake in a manifest.
const RANGE_MAX: usize = 10_000;

/// Register every filter, test and function on `env`.
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("string", |v: &Value| v.to_string());
    env.add_filter("lower", |s: &str| s.to_lowercase());
    env.add_filter("upper", |s: &str| s.to_uppercase());
    env.add_filter("trim", |s: &str| s.trim().to_string());
    env.add_filter("replace", |s: &str, from: &str, to: &str| {
        s.replace(from, to)
    });
    env.add_filter("split", split);
    env.add_filter("join", join);
    env.add_filter("length", length);
    env.add_filter("count", length);
    env.add_filter("first", |v: &Value| {
        items_of(v).map(|i| i.into_iter().next())
    });
    env.add_filter("last", |v: &Value| {
        items_of(v).map(|i| i.into_iter().last())
    });
    env.add_filter("list", |v: &Value| items_of(v).map(Value::from));
    env.add_filter("sort", sort);
    env.add_filter("items", |v: &Value| pairs(v, false));
    env.add_filter("dictsort", |v: &Value| pairs(v, true));

    env.add_test("defined", |v: &Value| !v.is_undefined());
    env.add_test("undefined", |v: &Value| v.is_undefined());
    env.add_test("none", |v: &Value| v.is_none());
    env.add_test("number", |v: &Value| v.kind() == ValueKind::Number);
    env.add_test("string", |v: &Value| v.kind() == ValueKind::String);
    env.add_test("mapping", |v: &Value| v.kind() == ValueKind::Map);
    env.add_test("sequence", |v: &Value| {
        matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
    });

    env.add_function("range", range);
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// `x | default(y)`: `y` (or "") when `x` is undefined; with a second
/// argument `true`, also when `x` is false, empty or none.
fn default(value: &Value, other: Option<Value>, lax: Option<bool>) -> Value {
    if value.is_undefined() || (lax == Some(true) && !value.is_true()) {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

/// A number, numeric string or bool as an integer (floats truncate).
fn int(value: &Value) -> Result<Value, Error> {
    if value.kind() == ValueKind::Bool {
        return Ok(Value::from(i64::from(value.is_true())));
    }
    if let Some(i) = value.as_i64() {
        return Ok(Value::from(i));
    }
    let f = float(value)?;
    #[allow(clippy::cast_possible_truncation)] // checked in range; trunc() is wanted
    let truncated = f.as_i64().or_else(|| {
        let x = f64::try_from(f.clone()).ok()?.trunc();
        (x.abs() < 9.0e15).then_some(x as i64)
    });
    truncated
        .map(Value::from)
        .ok_or_else(|| invalid(format!("`{value}` is not an integer")))
}

/// A number, numeric string or bool as a float.
fn float(value: &Value) -> Result<Value, Error> {
    if value.kind() == ValueKind::Bool {
        return Ok(Value::from(if value.is_true() { 1.0 } else { 0.0 }));
    }
    if value.kind() == ValueKind::Number {
        return Ok(value.clone());
    }
    value
        .as_str()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map(Value::from)
        .ok_or_else(|| invalid(format!("`{value}` is not a number")))
}

/// `s | split` splits on whitespace; `s | split(sep)` on `sep`.
fn split(s: &str, sep: Option<&str>) -> Value {
    match sep {
        Some(sep) => s.split(sep).map(Value::from).collect(),
        None => s.split_whitespace().map(Value::from).collect(),
    }
}

fn join(value: &Value, sep: Option<&str>) -> Result<String, Error> {
    let items = items_of(value)?;
    let text: Vec<String> = items.iter().map(|v| v.to_string()).collect();
    Ok(text.join(sep.unwrap_or("")))
}

/// Characters of a string, items of a list, entries of a map.
fn length(value: &Value) -> Result<usize, Error> {
    value
        .len()
        .ok_or_else(|| invalid(format!("`{value}` ({}) has no length", value.kind())))
}

fn sort(value: &Value) -> Result<Value, Error> {
    let mut items = items_of(value)?;
    items.sort();
    Ok(Value::from(items))
}

/// The items of a list, the keys of a map, the characters of a string.
fn items_of(value: &Value) -> Result<Vec<Value>, Error> {
    if let Some(s) = value.as_str() {
        return Ok(s.chars().map(Value::from).collect());
    }
    Ok(value.try_iter()?.collect())
}

/// A map's `[key, value]` pairs; `by_key` sorts them by key, ignoring case.
fn pairs(value: &Value, by_key: bool) -> Result<Value, Error> {
    if value.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "`{value}` ({}) is not a map",
            value.kind()
        )));
    }
    let mut out = Vec::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        out.push(Value::from(vec![key, item]));
    }
    if by_key {
        out.sort_by(|a, b| {
            let key = |v: &Value| v.get_item_by_index(0).unwrap_or_default();
            let (ka, kb) = (key(a), key(b));
            match (ka.as_str(), kb.as_str()) {
                (Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
                _ => ka.partial_cmp(&kb).unwrap_or(Ordering::Equal),
            }
        });
    }
    Ok(Value::from(out))
}

/// `range(n)`: 0..n; `range(a, b)`: a..b; `range(a, b, step)`.
fn range(lower: i64, upper: Option<i64>, step: Option<i64>) -> Result<Value, Error> {
    let (start, end) = match upper {
        Some(upper) => (lower, upper),
        None => (0, lower),
    };
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(invalid("range() step must not be 0".into()));
    }
    let mut out = Vec::new();
    let mut n = start;
    while (step > 0 && n < end) || (step < 0 && n > end) {
        if out.len() == RANGE_MAX {
            return Err(invalid(format!("range() of more than {RANGE_MAX} items")));
        }
        out.push(Value::from(n));
        n = match n.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use minijinja::UndefinedBehavior;

    use super::*;

    fn render(template: &str) -> Result<String, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        register(&mut env);
        let ctx = minijinja::context! {
            n => "7",
            ports => vec![8081, 8080],
            env => minijinja::context! { b => 2, A => 1, c => 3 },
            name => "  Web  ",
            empty => "",
        };
        env.render_str(template, ctx)
    }

    #[test]
    fn each_filter_test_and_function() {
        let cases = [
            ("{{ missing | default('x') }}", "x"),
            ("{{ missing | d }}", ""),
            ("{{ n | default('x') }}", "7"),
            ("{{ empty | default('x', true) }}", "x"),
            ("{{ n | int * 2 }}", "14"),
            ("{{ '2.9' | int }}", "2"),
            ("{{ true | int }}", "1"),
            ("{{ '0.5' | float * 2 }}", "1.0"),
            ("{{ 5 | string ~ 'x' }}", "5x"),
            ("{{ name | trim | lower }}|{{ name | upper }}", "web|  WEB  "),
            ("{{ 'a-b-c' | replace('-', '.') }}", "a.b.c"),
            ("{{ 'a b  c' | split | join(',') }}", "a,b,c"),
            ("{{ 'eth0.10' | split('.') | last }}", "10"),
            ("{{ ports | length }} {{ name | count }} {{ env | length }}", "2 7 3"),
            ("{{ ports | first }} {{ ports | sort | join(' ') }}", "8081 8080 8081"),
            ("{{ 'ab' | list | join('/') }}", "a/b"),
            (
                "{% for k, v in env | dictsort %}{{ k }}={{ v }} {% endfor %}",
                "A=1 b=2 c=3 ",
            ),
            // items keeps the map's own order (berth's maps are sorted already).
            ("{% for k, v in env | items %}{{ k }}{% endfor %}", "bAc"),
            (
                "{{ missing is defined }} {{ n is defined }} {{ missing is undefined }}",
                "False True True",
            ),
            (
                "{{ n is string }} {{ 1 is number }} {{ env is mapping }} {{ ports is sequence }} {{ none is none }}",
                "True True True True True",
            ),
            ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
            ("{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}", "135"),
            ("{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}", "321"),
        ];
        for (template, want) in cases {
            assert_eq!(render(template).unwrap(), want, "{template}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        for template in [
            "{{ 'x' | int }}",
            "{{ 'x' | float }}",
            "{{ 3 | length }}",
            "{{ ports | items }}",
            "{{ range(1, 2, 0) }}",
            "{{ range(100000) }}",
            "{{ missing | upper }}",
            "{{ missing | int }}",
        ] {
            assert!(render(template).is_err(), "{template}");
        }
    }
}

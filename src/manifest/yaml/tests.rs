use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

#[test]
fn plain_scalars_resolve_by_the_core_schema() {
    let cases: &[(&str, Scalar)] = &[
        ("", Scalar::Null),
        ("~", Scalar::Null),
        ("null", Scalar::Null),
        ("true", Scalar::Bool(true)),
        ("False", Scalar::Bool(false)),
        ("42", Scalar::Int(42)),
        ("-7", Scalar::Int(-7)),
        ("+3", Scalar::Int(3)),
        ("0x1f", Scalar::Int(31)),
        ("0o17", Scalar::Int(15)),
        ("18446744073709551615", Scalar::Uint(u64::MAX)),
        ("0.5", Scalar::Float(0.5)),
        ("-1.5e3", Scalar::Float(-1500.0)),
        (".5", Scalar::Float(0.5)),
        (".inf", Scalar::Float(f64::INFINITY)),
        // YAML 1.1 booleans and sizes stay strings.
        ("yes", Scalar::Str("yes")),
        ("64M", Scalar::Str("64M")),
        ("1.2.3", Scalar::Str("1.2.3")),
        ("0x", Scalar::Str("0x")),
        ("-", Scalar::Str("-")),
        (".", Scalar::Str(".")),
        ("1e", Scalar::Str("1e")),
    ];
    for (text, want) in cases {
        assert_eq!(resolve(text), *want, "{text:?}");
    }
}

#[test]
fn quoted_and_tagged_scalars_are_strings() {
    let v: BTreeMap<String, serde_json::Value> =
        from_str("a: '1'\nb: \"true\"\nc: !!str 5\nd: 5\ne: |\n  x\n").unwrap();
    assert_eq!(v["a"], serde_json::json!("1"));
    assert_eq!(v["b"], serde_json::json!("true"));
    assert_eq!(v["c"], serde_json::json!("5"));
    assert_eq!(v["d"], serde_json::json!(5));
    assert_eq!(v["e"], serde_json::json!("x\n"));
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Inner {
    name: String,
    #[serde(default)]
    port: Option<u16>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Outer {
    items: Vec<Inner>,
    #[serde(default)]
    by_name: BTreeMap<String, Inner>,
}

#[test]
fn wrong_type_names_the_value_path_and_position() {
    let text = "items:\n  - name: a\n  - name: b\n    port: lots\n";
    let e = from_str::<Outer>(text).unwrap_err();
    assert_eq!(e.path, "items[1].port");
    assert_eq!(e.pos, Some(Pos { line: 4, col: 11 }));
    assert_eq!(e.message, "invalid type: string \"lots\", expected u16");
    assert!(!e.syntax);
}

#[test]
fn out_of_range_number_is_refused() {
    let e = from_str::<Outer>("items: [{ name: a, port: 70000 }]\n").unwrap_err();
    assert_eq!(e.path, "items[0].port");
    assert!(e.message.contains("70000"), "{}", e.message);
}

#[test]
fn unknown_field_is_named_by_its_map_at_the_key() {
    let text = "items: []\nby_name:\n  web:\n    name: w\n    nmae: x\n";
    let e = from_str::<Outer>(text).unwrap_err();
    assert_eq!(e.path, "by_name.web");
    assert_eq!(e.pos, Some(Pos { line: 5, col: 5 }));
    assert!(
        e.message.starts_with("unknown field `nmae`"),
        "{}",
        e.message
    );
}

#[test]
fn missing_field_is_named_by_its_map() {
    let e = from_str::<Outer>("items:\n  - port: 1\n").unwrap_err();
    assert_eq!(e.path, "items[0]");
    assert_eq!(e.pos, Some(Pos { line: 2, col: 5 }));
    assert_eq!(e.message, "missing field `name`");
}

#[test]
fn repeated_key_is_refused() {
    let e =
        from_str::<Outer>("items: []\nby_name:\n  a: { name: x }\n  a: { name: y }\n").unwrap_err();
    assert_eq!(e.path, "by_name");
    assert_eq!(e.pos, Some(Pos { line: 4, col: 3 }));
    assert_eq!(e.message, "key `a` appears twice; keep one");
}

#[test]
fn syntax_error_has_a_position() {
    let e = from_str::<Outer>("items: [\n  { name: a\n").unwrap_err();
    assert!(e.syntax);
    assert!(e.pos.is_some_and(|p| p.line >= 2), "{e}");
}

#[test]
fn anchors_and_aliases_copy_the_node() {
    let text = "items:\n  - &base { name: a, port: 1 }\n  - *base\n";
    let v: Outer = from_str(text).unwrap();
    assert_eq!(v.items[0], v.items[1]);
    let e = from_str::<Outer>("items: [*nope]\n").unwrap_err();
    assert!(e.syntax, "{e}");
}

#[test]
fn empty_document_is_null() {
    let v: Option<Outer> = from_str("# nothing\n").unwrap();
    assert!(v.is_none());
}

#[test]
fn scalars_read_as_text_where_a_string_is_wanted() {
    let v: Inner = from_str("name: 0.50\n").unwrap();
    assert_eq!(v.name, "0.50");
}

#[test]
fn to_string_round_trips_and_quotes_what_would_change_type() {
    let mut by_name = BTreeMap::new();
    for (k, name) in [
        ("a", "true"),
        ("b", "1.0"),
        ("c", ""),
        ("d", "x: y"),
        ("e", "0o17"),
    ] {
        by_name.insert(
            k.to_string(),
            Inner {
                name: name.to_string(),
                port: Some(80),
            },
        );
    }
    let v = Outer {
        items: vec![Inner {
            name: "plain".into(),
            port: None,
        }],
        by_name,
    };
    let text = to_string(&v).unwrap();
    assert!(!text.starts_with("---"), "{text}");
    assert!(text.starts_with("items:"), "struct order is kept: {text}");
    let back: Outer = from_str(&text).unwrap();
    assert_eq!(back, v, "{text}");
}

#[test]
fn enums_read_from_a_name_or_a_one_entry_map() {
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Off,
        Limit(u32),
    }
    assert_eq!(from_str::<Mode>("off\n").unwrap(), Mode::Off);
    assert_eq!(from_str::<Mode>("limit: 3\n").unwrap(), Mode::Limit(3));
    assert!(from_str::<Mode>("[off]\n").is_err());
}

/// `a: &a [k items]` and then `m` entries that each alias it.
fn aliased(k: usize, m: usize) -> String {
    let items: Vec<String> = (0..k).map(|i| i.to_string()).collect();
    let mut text = format!("a: &a [{}]\n", items.join(", "));
    for i in 0..m {
        text.push_str(&format!("b{i}: *a\n"));
    }
    text
}

#[test]
fn aliases_may_add_ten_times_the_nodes_written_out() {
    // Written out: the map, `a`, the sequence, 30 items, then a key and an
    // alias per entry; each alias adds 30 nodes. 33 entries: 990 added, 10 x 99.
    assert!(load(&aliased(30, 33)).is_ok());
    let e = load(&aliased(30, 34)).unwrap_err();
    assert!(e.limit, "{e}");
    assert_eq!(e.pos, Some(Pos { line: 35, col: 6 }), "{e}");
    assert!(
        e.message
            .starts_with("alias `*a`: aliases expand to 1020 nodes, more than 10 times the 101"),
        "{e}"
    );
}

#[test]
fn aliases_add_at_most_a_hundred_thousand_nodes() {
    assert!(load(&aliased(10_000, 10)).is_ok());
    let e = load(&aliased(10_000, 11)).unwrap_err();
    assert_eq!(e.pos, Some(Pos { line: 12, col: 6 }), "{e}");
    assert!(
        e.message.contains("more than 100000 nodes"),
        "{}",
        e.message
    );
}

#[test]
fn an_alias_bomb_is_refused_at_once() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let e = from_str::<serde_json::Value>(&text).unwrap_err();
    assert!(e.limit && e.message.starts_with("alias `*a"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn nesting_is_at_most_64_deep() {
    let nest = |n: usize| format!("{}{}\n", "[".repeat(n), "]".repeat(n));
    assert!(load(&nest(64)).is_ok());
    let e = load(&nest(65)).unwrap_err();
    assert_eq!(e.pos, Some(Pos { line: 1, col: 65 }), "{e}");
    assert!(e.message.contains("deeper than 64"), "{e}");
}

#[test]
fn field_paths_are_at_most_1024_bytes() {
    // YAML itself caps a plain key at 1024 characters; two keys make a path.
    let keyed = |n: usize| format!("{}:\n  {}: 1\n", "a".repeat(512), "b".repeat(n));
    assert!(load(&keyed(511)).is_ok());
    let e = load(&keyed(512)).unwrap_err();
    assert!(e.limit && e.message.contains("1025 bytes"), "{e}");
    assert_eq!(e.pos, Some(Pos { line: 2, col: 517 }), "{e}");
    // In a sequence the index counts: `a.b[0]`.
    let seq = |n: usize| format!("{}:\n  {}: [1]\n", "a".repeat(512), "b".repeat(n));
    assert!(load(&seq(508)).is_ok());
    assert!(load(&seq(509)).is_err());
}

#[test]
fn tags_berth_does_not_define_are_refused_with_their_position() {
    // The position is the tagged value's.
    for (text, tag, line) in [
        (
            "a: !!python/object:os.system x\n",
            "!!python/object:os.system",
            1,
        ),
        ("a:\n  b: !foo 1\n", "!foo", 2),
        ("a: !!int 5\n", "!!int", 1),
        ("a: !!map { b: 1 }\n", "!!map", 1),
        ("a: ! x\n", "!", 1),
    ] {
        let e = load(text).unwrap_err();
        assert!(e.limit, "{text}: {e}");
        assert!(e.message.contains(&format!("`{tag}`")), "{text}: {e}");
        assert_eq!(e.pos.map(|p| p.line), Some(line), "{text}: {e}");
    }
    assert!(load("a: !!str 5\n").is_ok());
}

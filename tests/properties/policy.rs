//! Property tests: policy.

#![allow(unused_imports)]

use super::*;

#[test]
fn minimal_policy_parses() {
    let policy = parse_policy(MINIMAL_POLICY).expect("the minimal policy is valid");
    assert_eq!(policy.listeners.len(), 1);
    assert!(policy.users.contains_key("alice"));
    assert!(policy.backends.contains_key("files"));
    assert!(policy.roles.contains_key("download"));
}

proptest! {
    #![proptest_config(cheap())]

    /// The minimal policy reformatted (pretty-printed, indented with tabs, CRLF line ends, a
    /// byte-order mark) still parses to the same policy.
    #[test]
    fn valid_policy_reformatted_parses(pretty in any::<bool>(), crlf in any::<bool>(), bom in any::<bool>(), tabs in any::<bool>()) {
        let value: serde_json::Value = serde_json::from_str(MINIMAL_POLICY).expect("valid JSON");
        let mut text = if pretty {
            serde_json::to_string_pretty(&value).expect("serialise")
        } else {
            MINIMAL_POLICY.to_owned()
        };
        if tabs {
            text = text.replace("  ", "\t");
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        if bom {
            text.insert(0, '\u{feff}');
        }
        let expected = parse_policy(MINIMAL_POLICY).expect("valid");
        prop_assert_eq!(parse_policy(&text), Ok(expected));
    }

    /// Random edits of the valid policy: no panic, and every error is placed inside the text.
    #[test]
    fn mutated_policy_errors_are_placed(edits in vec(edit(), 1..6)) {
        let text = apply_edits(MINIMAL_POLICY, &edits);
        check_policy_errors(&text)?;
    }

    /// The same on a pretty-printed policy, so that errors fall on many different lines.
    #[test]
    fn mutated_pretty_policy_errors_are_placed(edits in vec(edit(), 1..6)) {
        let value: serde_json::Value = serde_json::from_str(MINIMAL_POLICY).expect("valid JSON");
        let pretty = serde_json::to_string_pretty(&value).expect("serialise");
        let text = apply_edits(&pretty, &edits);
        check_policy_errors(&text)?;
    }

    /// Structural edits of the valid policy (values of the wrong type or out of range,
    /// unknown or misplaced keys, removed sections), written compactly or pretty-printed:
    /// the document stays JSON, so these reach validation and the locating of errors by
    /// path. No panic, every error placed.
    #[test]
    fn json_edited_policy_errors_are_placed(edits in vec(json_edit(), 1..5), pretty in any::<bool>()) {
        let mut document: serde_json::Value = serde_json::from_str(MINIMAL_POLICY).expect("valid JSON");
        for edit in &edits {
            apply_json_edit(&mut document, edit);
        }
        let text = if pretty {
            serde_json::to_string_pretty(&document)
        } else {
            serde_json::to_string(&document)
        }
        .expect("serialise");
        check_policy_errors(&text)?;
    }

    /// Arbitrary text, and text made of JSON punctuation: no panic, errors placed.
    #[test]
    fn arbitrary_policy_text(text in prop_oneof![
        any::<String>(),
        vec(policy_char(), 0..64).prop_map(|c| c.into_iter().collect::<String>()),
    ]) {
        check_policy_errors(&text)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Deep nesting, where serde_json's recursion limit kicks in: no stack overflow, errors
    /// placed. The nesting is put where the model expects an object, a list or a string.
    #[test]
    fn deeply_nested_policy(
        depth in prop_oneof![1usize..8, 120usize..140, 400usize..600],
        opener in select(&["[", "{\"a\":", "{\"listeners\":"][..]),
        closed in any::<bool>(),
        inside in select(&["listeners", "backends", "users", "roles"][..]),
    ) {
        let nest = opener.repeat(depth);
        let close: String = if closed {
            opener.chars().rev().filter_map(|c| match c {
                '[' => Some(']'),
                '{' => Some('}'),
                _ => None,
            }).collect::<String>().repeat(depth)
        } else {
            String::new()
        };
        check_policy_errors(&format!("{nest}1{close}"))?;
        check_policy_errors(&format!("{{\"{inside}\":{nest}1{close}}}"))?;
        check_policy_errors(&format!("{{\"{inside}\":\n{nest}\n1{close}}}"))?;
    }
}

//! Arbitrary UTF-8 as a hunting query (`koban_hunt::parse`). Parsing must not panic
//! or overflow the stack; an error must point at a character boundary inside the
//! text (or just past its end) and draw its caret; a parsed query's spans must lie
//! inside the text, on character boundaries, and parsing must be deterministic.
#![no_main]

use koban_hunt::{parse, Expr, Query, Span, Stage};
use libfuzzer_sys::fuzz_target;

fn check_span(text: &str, span: Span, what: &str) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "{what} span {span:?} outside 0..={} of {text:?}",
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "{what} span {span:?} splits a character of {text:?}"
    );
    assert!(
        span.start == span.end || !text[span.start..span.end].trim().is_empty(),
        "{what} span {span:?} covers only whitespace of {text:?}"
    );
}

/// Walks the expression (its depth is bounded by the parser's nesting limit).
fn check_expr(text: &str, e: &Expr) {
    match e {
        Expr::And(items) | Expr::Or(items) => {
            assert!(
                items.len() >= 2,
                "a {}-item And/Or in {text:?}",
                items.len()
            );
            items.iter().for_each(|i| check_expr(text, i));
        }
        Expr::Not(inner) => check_expr(text, inner),
        Expr::Match { span, field, .. }
        | Expr::Range { span, field, .. }
        | Expr::Cidr { span, field, .. }
        | Expr::Exists { span, field } => {
            assert!(!field.is_empty(), "an empty field name from {text:?}");
            check_span(text, *span, "condition");
        }
        Expr::Text { span, .. } => check_span(text, *span, "text"),
    }
    if let Expr::Range { min, max, .. } = e {
        for b in [min, max].into_iter().flatten() {
            assert!(b.value.is_finite(), "a non-finite bound from {text:?}");
        }
    }
}

fn check_query(text: &str, q: &Query) {
    if let Some(e) = &q.search {
        check_expr(text, e);
    }
    for s in &q.stages {
        let span = match s {
            Stage::Stats { span, .. }
            | Stage::Top { span, .. }
            | Stage::Timechart { span, .. }
            | Stage::Sort { span, .. }
            | Stage::Head { span, .. }
            | Stage::Fields { span, .. } => *span,
        };
        check_span(text, span, "stage");
        match s {
            Stage::Top { limit, .. } | Stage::Head { limit, .. } => assert!(*limit >= 1),
            Stage::Timechart { span_ms, .. } => assert!(*span_ms > 0),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = parse(text);
    match &first {
        Ok(q) => check_query(text, q),
        Err(e) => {
            assert!(
                e.pos <= text.len(),
                "error at {} past the end of {text:?}: {e}",
                e.pos
            );
            assert!(
                text.is_char_boundary(e.pos),
                "error at {} splits a character of {text:?}: {e}",
                e.pos
            );
            assert!(
                !e.message.is_empty(),
                "an error without a message for {text:?}"
            );
            let caret = e.caret(text);
            assert!(
                caret.ends_with('^'),
                "a caret drawing without its caret: {caret:?}"
            );
            let _ = e.to_string();
        }
    }
    assert_eq!(
        parse(text),
        first,
        "parsing {text:?} twice gave different answers"
    );
});

//! The query language as data: queries and what they parse to (in a compact
//! rendering), queries and where and why they fail, spans, and generated queries.
//!
//! The rendering: `field='value'` a Match, `'text'` a Text, `(exists f)`,
//! `(range f >=1 <=5)`, `(cidr f 10.0.0.0/8)`, `(and ..)`, `(or ..)`, `(not ..)`;
//! `*` for no search; `earliest=rel(ms)` / `abs(ms)`; stages after ` | `.

use std::fmt::Write;

use koban_hunt::{parse, Expr, Query, Span, Stage, TimeBound, MAX_DEPTH, MAX_QUERY_LEN};

fn expr(e: &Expr, out: &mut String) {
    let list = |name: &str, items: &[Expr], out: &mut String| {
        out.push('(');
        out.push_str(name);
        for i in items {
            out.push(' ');
            expr(i, out);
        }
        out.push(')');
    };
    match e {
        Expr::And(items) => list("and", items, out),
        Expr::Or(items) => list("or", items, out),
        Expr::Not(inner) => {
            out.push_str("(not ");
            expr(inner, out);
            out.push(')');
        }
        Expr::Match { field, value, .. } => {
            let _ = write!(out, "{field}='{value}'");
        }
        Expr::Range {
            field, min, max, ..
        } => {
            let _ = write!(out, "(range {field}");
            if let Some(b) = min {
                let _ = write!(out, " {}{}", if b.inclusive { ">=" } else { ">" }, b.value);
            }
            if let Some(b) = max {
                let _ = write!(out, " {}{}", if b.inclusive { "<=" } else { "<" }, b.value);
            }
            out.push(')');
        }
        Expr::Cidr { field, net, .. } => {
            let _ = write!(out, "(cidr {field} {net})");
        }
        Expr::Exists { field, .. } => {
            let _ = write!(out, "(exists {field})");
        }
        Expr::Text { text, .. } => {
            let _ = write!(out, "'{text}'");
        }
    }
}

fn bound(b: TimeBound) -> String {
    match b {
        TimeBound::Relative(ms) => format!("rel({ms})"),
        TimeBound::Absolute(ms) => format!("abs({ms})"),
    }
}

fn render(q: &Query) -> String {
    let mut out = String::new();
    match &q.search {
        Some(e) => expr(e, &mut out),
        None => out.push('*'),
    }
    if let Some(b) = q.earliest {
        let _ = write!(out, " earliest={}", bound(b));
    }
    if let Some(b) = q.latest {
        let _ = write!(out, " latest={}", bound(b));
    }
    for s in &q.stages {
        out.push_str(" | ");
        match s {
            Stage::Stats { name, by, .. } if by.is_empty() => {
                let _ = write!(out, "stats {name}");
            }
            Stage::Stats { name, by, .. } => {
                let _ = write!(out, "stats {name} by {}", by.join(","));
            }
            Stage::Top {
                field, limit, rare, ..
            } => {
                let _ = write!(
                    out,
                    "{} {limit} {field}",
                    if *rare { "rare" } else { "top" }
                );
            }
            Stage::Timechart { span_ms, by, .. } => {
                let _ = write!(out, "timechart {span_ms}");
                if let Some(by) = by {
                    let _ = write!(out, " by {by}");
                }
            }
            Stage::Sort { keys, .. } => {
                out.push_str("sort");
                for k in keys {
                    let _ = write!(out, " {}{}", if k.descending { '-' } else { '+' }, k.field);
                }
            }
            Stage::Head { limit, .. } => {
                let _ = write!(out, "head {limit}");
            }
            Stage::Fields { fields, .. } => {
                let _ = write!(out, "fields {}", fields.join(" "));
            }
        }
    }
    out
}

/// (query, rendering)
const CASES: &[(&str, &str)] = &[
    // ---- empty search
    ("", "*"),
    ("   ", "*"),
    ("| head", "* | head 10"),
    ("  |stats count()", "* | stats count"),
    // ---- text
    ("failed", "'failed'"),
    ("\"failed password\"", "'failed password'"),
    ("failed password", "(and 'failed' 'password')"),
    ("4625", "'4625'"),
    ("10.1.2.3", "'10.1.2.3'"),
    ("fe80::1", "'fe80::1'"),
    ("::1", "'::1'"),
    ("http://evil.example/x?a=b", "'http://evil.example/x?a=b'"),
    (r"C:\Windows\System32", r"'C:\Windows\System32'"),
    ("powershell*", "'powershell*'"),
    ("*", "*"),
    ("* | head 1", "* | head 1"),
    ("\"*\"", "'*'"),
    ("* a", "(and '*' 'a')"),
    ("\"AND\"", "'AND'"),
    ("\"-enc\"", "'-enc'"),
    ("foo(bar)", "'foo(bar)'"),
    (r"a\ b", "'a b'"),
    (r"a\|b", "'a|b'"),
    (r#"say\"hi"#, r#"'say"hi'"#),
    ("ログイン失敗", "'ログイン失敗'"),
    ("\"ログイン 失敗\"", "'ログイン 失敗'"),
    // ---- boolean structure
    ("a AND b", "(and 'a' 'b')"),
    ("a and b", "(and 'a' 'b')"),
    ("a OR b", "(or 'a' 'b')"),
    ("a or b Or c", "(or 'a' 'b' 'c')"),
    ("a b OR c", "(or (and 'a' 'b') 'c')"),
    ("a OR b c", "(or 'a' (and 'b' 'c'))"),
    ("a OR b AND c OR d", "(or 'a' (and 'b' 'c') 'd')"),
    ("(a OR b) c", "(and (or 'a' 'b') 'c')"),
    ("NOT a", "(not 'a')"),
    ("not a b", "(and (not 'a') 'b')"),
    ("-a", "(not 'a')"),
    ("a -b", "(and 'a' (not 'b'))"),
    ("NOT NOT a", "(not (not 'a'))"),
    ("--a", "(not (not 'a'))"),
    ("-(a OR b)", "(not (or 'a' 'b'))"),
    ("NOT (a b)", "(not (and 'a' 'b'))"),
    ("-\"x y\"", "(not 'x y')"),
    ("((a))", "'a'"),
    ("(a)(b)", "(and 'a' 'b')"),
    ("a AND NOT b", "(and 'a' (not 'b'))"),
    ("a OR NOT b", "(or 'a' (not 'b'))"),
    ("a\tb\nc", "(and 'a' 'b' 'c')"),
    // ---- field matches
    ("user=bob", "user='bob'"),
    ("user:bob", "user='bob'"),
    ("user==bob", "user='bob'"),
    ("EventID = 4625", "EventID='4625'"),
    ("EventID= 4625", "EventID='4625'"),
    ("user=adm*", "user='adm*'"),
    ("user=j?hn", "user='j?hn'"),
    ("user=\"bob smith\"", "user='bob smith'"),
    ("user=\"\"", "user=''"),
    ("user=\"*\"", "user='*'"),
    ("user!=bob", "(not user='bob')"),
    ("user != bob", "(not user='bob')"),
    ("user=*", "(exists user)"),
    ("user!=*", "(not (exists user))"),
    ("@source=fw1", "@source='fw1'"),
    ("host.name=ws01", "host.name='ws01'"),
    ("winlog.event_data.User=alice", "winlog.event_data.User='alice'"),
    ("event-id=1", "event-id='1'"),
    ("_time=1", "_time='1'"),
    ("`event data`=x", "event data='x'"),
    ("`1st`:x", "1st='x'"),
    ("ユーザー=太郎", "ユーザー='太郎'"),
    ("msg=\"ログイン 失敗\"", "msg='ログイン 失敗'"),
    ("time:10:00:00", "time='10:00:00'"),
    ("url=http://x/?a=b", "url='http://x/?a=b'"),
    ("Status=0x0", "Status='0x0'"),
    ("-Status=0x0", "(not Status='0x0')"),
    ("NOT user=bob", "(not user='bob')"),
    ("(user=bob)", "user='bob'"),
    ("(user=bob OR user=eve) host=a", "(and (or user='bob' user='eve') host='a')"),
    ("CommandLine=*Invoke-Expression(*)*", "CommandLine='*Invoke-Expression(*)*'"),
    ("(x=f(a))", "x='f(a)'"),
    ("user=a,b", "user='a,b'"),
    ("and=1", "and='1'"),
    // ---- backslashes: kept as typed, for the pattern to read
    (r"Image=C:\Windows\System32\cmd.exe", r"Image='C:\Windows\System32\cmd.exe'"),
    (r"Image=C:\Windows\\*", r"Image='C:\Windows\\*'"),
    (r"name=a\*b", r"name='a\*b'"),
    (r"name=a\ b", "name='a b'"),
    (r"name=a\)b", "name='a)b'"),
    (r#"Image="C:\Program Files\x.exe""#, r"Image='C:\Program Files\x.exe'"),
    (r#"msg="say \"hi\"""#, r#"msg='say "hi"'"#),
    (r#"path="C:\\""#, r"path='C:\\'"),
    (r#"path="\\\\server\\share""#, r"path='\\\\server\\share'"),
    // ---- ranges
    ("port>1024", "(range port >1024)"),
    ("port>=1024", "(range port >=1024)"),
    ("port<1024", "(range port <1024)"),
    ("port<=1024", "(range port <=1024)"),
    ("port < 1024", "(range port <1024)"),
    ("score>-2.5", "(range score >-2.5)"),
    ("flags>=0x1F", "(range flags >=31)"),
    ("n<=\"5\"", "(range n <=5)"),
    ("port=1..1024", "(range port >=1 <=1024)"),
    ("t=-5..-1", "(range t >=-5 <=-1)"),
    ("x=0.5..0x10", "(range x >=0.5 <=16)"),
    ("x=3..3", "(range x >=3 <=3)"),
    ("port!=1..1024", "(not (range port >=1 <=1024))"),
    ("path=..\\x", "path='..\\x'"),
    ("v=a..b", "v='a..b'"),
    ("v=\"1..2\"", "v='1..2'"),
    // ---- networks
    ("ip=10.0.0.0/8", "(cidr ip 10.0.0.0/8)"),
    ("ip=fe80::/10", "(cidr ip fe80::/10)"),
    ("ip=192.168.1.7/32", "(cidr ip 192.168.1.7/32)"),
    ("ip!=10.0.0.0/8", "(not (cidr ip 10.0.0.0/8))"),
    ("ip=10.0.0.1", "ip='10.0.0.1'"),
    ("ip=2001:db8::1", "ip='2001:db8::1'"),
    ("ip=10.*", "ip='10.*'"),
    ("ip=\"10.0.0.0/8\"", "ip='10.0.0.0/8'"),
    ("uri=/admin/login", "uri='/admin/login'"),
    // ---- IN
    ("user IN (a, b, c)", "(or user='a' user='b' user='c')"),
    ("user in (a)", "user='a'"),
    ("user IN(a,b)", "(or user='a' user='b')"),
    ("user IN ( \"x y\" , adm* )", "(or user='x y' user='adm*')"),
    ("ip IN (10.0.0.0/8, 192.168.0.0/16, 1.2.3.4)", "(or (cidr ip 10.0.0.0/8) (cidr ip 192.168.0.0/16) ip='1.2.3.4')"),
    ("port IN (22, 1000..2000)", "(or port='22' (range port >=1000 <=2000))"),
    ("-user IN (a, b)", "(not (or user='a' user='b'))"),
    (r"x IN (a\,b, c)", "(or x='a,b' x='c')"),
    ("sign in now", "(and 'sign' 'in' 'now')"),
    ("名前 IN (太郎, 花子)", "(or 名前='太郎' 名前='花子')"),
    // ---- time bounds
    ("earliest=-24h", "* earliest=rel(-86400000)"),
    ("earliest=-7d", "* earliest=rel(-604800000)"),
    ("earliest=-15m latest=now", "* earliest=rel(-900000) latest=rel(0)"),
    ("earliest=-30s", "* earliest=rel(-30000)"),
    ("latest=+1h", "* latest=rel(3600000)"),
    ("EARLIEST=-1H", "* earliest=rel(-3600000)"),
    ("earliest:-1h", "* earliest=rel(-3600000)"),
    ("earliest=2023-08-15T10:00:00Z", "* earliest=abs(1692093600000)"),
    ("earliest=2023-08-15", "* earliest=abs(1692057600000)"),
    ("earliest=\"2023-08-15 12:00:00+02:00\"", "* earliest=abs(1692093600000)"),
    ("earliest=1970-01-01 latest=1970-01-02", "* earliest=abs(0) latest=abs(86400000)"),
    ("earliest=1969-12-31", "* earliest=abs(-86400000)"),
    ("a earliest=-1h b", "(and 'a' 'b') earliest=rel(-3600000)"),
    ("earliest=-1h AND (a OR b)", "(or 'a' 'b') earliest=rel(-3600000)"),
    ("earliest=-1h | head 5", "* earliest=rel(-3600000) | head 5"),
    ("`earliest`=-1h", "earliest='-1h'"),
    ("earliest_seen=x", "earliest_seen='x'"),
    // ---- stages
    ("a | stats count() by b", "'a' | stats count by b"),
    ("a | stats count by b, c", "'a' | stats count by b,c"),
    ("a | stats count() as n by b,c", "'a' | stats n by b,c"),
    ("a | stats count()", "'a' | stats count"),
    ("a | STATS COUNT() AS Failures BY IpAddress", "'a' | stats Failures by IpAddress"),
    ("a | stats count() as `logon count` by `Target User`", "'a' | stats logon count by Target User"),
    ("a | stats count ( ) by b", "'a' | stats count by b"),
    ("a | top user", "'a' | top 10 user"),
    ("a | top 5 user", "'a' | top 5 user"),
    ("a | rare host.name", "'a' | rare 10 host.name"),
    ("a | Rare 3 @source", "'a' | rare 3 @source"),
    ("a | timechart count()", "'a' | timechart 3600000"),
    ("a | timechart span=5m count()", "'a' | timechart 300000"),
    ("a | timechart span = 1d count() by host", "'a' | timechart 86400000 by host"),
    ("a | timechart count() span=30s", "'a' | timechart 30000"),
    ("a | timechart span=2w count", "'a' | timechart 1209600000"),
    ("a | sort -count", "'a' | sort -count"),
    ("a | sort -F1, +F2, F3", "'a' | sort -F1 +F2 +F3"),
    ("a | sort - count", "'a' | sort -count"),
    ("a | head", "'a' | head 10"),
    ("a | head 20", "'a' | head 20"),
    ("a | HEAD 1", "'a' | head 1"),
    ("a | fields user, host.name", "'a' | fields user host.name"),
    ("a | fields ユーザー", "'a' | fields ユーザー"),
    (
        "a | stats count() by ip | sort -count | head 20",
        "'a' | stats count by ip | sort -count | head 20",
    ),
    ("a|head|head", "'a' | head 10 | head 10"),
    // ---- the crate's example
    (
        "EventID=4625 AND (TargetUserName=adm* OR IpAddress=10.0.0.0/8) -Status=0x0 \"failed\"\n    earliest=-24h | stats count() by IpAddress | sort -count | head 20",
        "(and EventID='4625' (or TargetUserName='adm*' (cidr IpAddress 10.0.0.0/8)) (not Status='0x0') 'failed') earliest=rel(-86400000) | stats count by IpAddress | sort -count | head 20",
    ),
];

#[test]
fn queries_parse_to_what_they_mean() {
    let mut failures = Vec::new();
    for (query, expected) in CASES {
        match parse(query) {
            Ok(q) => {
                let got = render(&q);
                if got != *expected {
                    failures.push(format!(
                        "{query:?}\n   expected {expected}\n        got {got}"
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "{query:?}\n   expected {expected}\n     failed {e}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// (query, position, a fragment of the message)
const ERRORS: &[(&str, usize, &str)] = &[
    // ---- quotes, parentheses, backticks
    ("\"unclosed", 0, "unclosed '\"'"),
    ("a \"unclosed | head", 2, "unclosed '\"'"),
    (r#"a="x\""#, 2, "unclosed '\"'"),
    ("(a OR b", 0, "unclosed '('"),
    ("x ((a) b", 2, "unclosed '('"),
    ("(", 0, "unclosed '('"),
    ("(a | head", 0, "unclosed '('"),
    ("a)", 1, "unmatched ')'"),
    (")", 0, "unmatched ')'"),
    ("()", 1, "empty parentheses"),
    ("`user=x", 0, "unclosed '`'"),
    ("``=x", 0, "empty field name"),
    ("`user` x", 7, "expected an operator"),
    ("\"a\"b", 3, "right after a closing quote"),
    ("user=\"a\"*", 8, "right after a closing quote"),
    ("a\"b", 1, "a '\"' inside a word"),
    ("user=ab\"c\"", 7, "a '\"' inside a word"),
    // ---- boolean structure
    ("a AND", 5, "expected a search term after AND"),
    ("a OR", 4, "expected a search term after OR"),
    (
        "a OR | head",
        5,
        "expected a search term after OR, found '|'",
    ),
    ("AND a", 0, "expected a search term before 'AND'"),
    ("OR a", 0, "expected a search term before 'OR'"),
    ("a OR OR b", 5, "after OR, found 'OR'"),
    ("a AND OR b", 6, "after AND, found 'OR'"),
    ("NOT", 3, "expected a search term after NOT"),
    ("a NOT", 5, "after NOT"),
    ("NOT )", 4, "after NOT, found ')'"),
    ("-AND", 1, "after '-'"),
    ("a - b", 2, "a lone '-'"),
    ("a -", 2, "a lone '-'"),
    ("(a -)", 3, "a lone '-'"),
    ("=x", 0, "expected a field name before '='"),
    ("a OR >5", 5, "expected a field name before '>'"),
    ("x:", 2, "expected a value right after ':'"),
    ("a OR not = 1", 9, "expected a field name before '='"),
    ("!=x", 0, "expected a field name before '!='"),
    // ---- values
    ("user=", 5, "expected a value after '='"),
    ("EventID=4625 AND x=", 19, "expected a value after '='"),
    ("user= | head", 5, "expected a value after '='"),
    ("(user=)", 6, "expected a value after '='"),
    ("user=  OR b", 5, "expected a value after '='"),
    ("user!=", 6, "expected a value after '!='"),
    ("user:", 5, "expected a value right after ':'"),
    ("user: bob", 5, "expected a value right after ':'"),
    (
        "Error: disk full",
        6,
        "to search for the text \"Error:\", quote it",
    ),
    ("user=(a OR b)", 5, "found '('"),
    ("ユーザー=", "ユーザー=".len(), "expected a value after '='"),
    ("名前=\"太郎", "名前=".len(), "unclosed '\"'"),
    ("`名前` 太郎", "`名前` ".len(), "expected an operator"),
    // ---- numbers and ranges
    ("port>", 5, "expected a value after '>'"),
    ("port>abc", 5, "expected a number after '>'"),
    ("port>=1e3", 6, "found '1e3'"),
    ("port<0x", 5, "expected a number"),
    ("port<=inf", 6, "expected a number"),
    ("port>10.", 5, "expected a number"),
    ("port>\"five\"", 5, "expected a number"),
    ("port>五", 5, "found '五'"),
    ("port=1..", 8, "expected a number after '..'"),
    ("port=1..x", 8, "found 'x'"),
    ("port=10..5", 5, "the range 10..5 is empty"),
    ("ip=10.0.0.0/33", 12, "bad network"),
    ("ip=fe80::/129", 10, "0-128 for IPv6"),
    ("ip=10.0.0.0/", 12, "bad network"),
    // ---- IN
    ("user IN ()", 9, "an empty IN list"),
    ("user IN (a,", 8, "unclosed '(' of the IN list"),
    ("user IN (a, )", 11, "expected a value after ','"),
    ("user IN (,a)", 9, "expected a value after '('"),
    ("user IN (a b)", 11, "expected ',' or ')'"),
    ("user IN (a | head", 8, "unclosed '('"),
    ("user IN (a, 10.0.0.0/40)", 21, "bad network"),
    // ---- time bounds
    ("earliest=", 9, "expected a value after '='"),
    ("earliest=yesterday", 9, "bad time 'yesterday'"),
    ("earliest=24h", 9, "needs a sign: -24h"),
    ("earliest=-24x", 12, "unknown unit 'x'"),
    ("earliest=-h", 10, "bad relative time"),
    ("earliest=-99999999999999999d", 10, "too long"),
    ("earliest=2023-13-01", 14, "the month must be 01-12, not 13"),
    ("earliest=2023-02-29", 17, "the day must be 01-28, not 29"),
    (
        "earliest=2023-08-15T25:00:00Z",
        20,
        "the hour must be 00-23",
    ),
    ("earliest=2023-08-15T10:61", 23, "the minute must be 00-59"),
    (
        "earliest=2023-08-15T10:00:00Q",
        28,
        "expected the end of the time",
    ),
    ("earliest=2023-08-15X10:00", 19, "expected 'T'"),
    ("earliest=2023-8-15", 14, "the month as two digits"),
    (
        "earliest=\"2023-08-15T10:00:00+2:00\"",
        30,
        "offset hours as two digits",
    ),
    ("earliest!=-1h", 0, "earliest takes '='"),
    ("latest>now", 0, "latest takes '='"),
    ("earliest IN (-1h)", 0, "earliest takes '='"),
    ("earliest=-1h earliest=-2h", 13, "earliest= is given twice"),
    ("latest=now a latest=-1h", 13, "latest= is given twice"),
    ("a OR earliest=-1h", 5, "cannot be part of an OR"),
    ("earliest=-1h OR a", 0, "cannot be part of an OR"),
    ("(earliest=-1h)", 1, "not inside parentheses"),
    ("NOT earliest=-1h", 4, "cannot be negated"),
    ("-latest=now", 1, "cannot be negated"),
    ("earliest=-1h latest=-2h", 13, "the time range is empty"),
    (
        "earliest=2023-08-16 latest=2023-08-15",
        20,
        "the time range is empty",
    ),
    // ---- pipes and stages
    ("a |", 3, "expected a stage after '|'"),
    ("a | | head", 4, "expected a stage after '|'"),
    ("a | head |", 10, "expected a stage after '|'"),
    ("|", 1, "expected a stage after '|'"),
    ("a | 5", 4, "unknown stage '5'"),
    ("a | *", 4, "expected a stage name after '|', found '*'"),
    (
        "a | stat count()",
        4,
        "unknown stage 'stat' (did you mean stats?)",
    ),
    (
        "a | frobnicate",
        4,
        "the stages are stats, top, rare, timechart, sort, head, fields",
    ),
    ("a | 集計", 4, "unknown stage '集計'"),
    ("a | stats", 9, "expected count() after stats"),
    (
        "a | stats cont() by b",
        10,
        "found 'cont' (did you mean count()?)",
    ),
    ("a | stats sum(x)", 10, "sum() is not supported"),
    ("a | stats count(", 15, "unclosed '(' after count"),
    ("a | stats count(x)", 16, "count() takes nothing"),
    ("a | stats count() by", 20, "expected a field after 'by'"),
    ("a | stats count() by a,", 23, "expected a field after ','"),
    ("a | stats count() by a b", 23, "expected ',' before 'b'"),
    (
        "a | stats count() by 5x",
        21,
        "a field name starts with a letter",
    ),
    ("a | stats count() as", 20, "expected a field after 'as'"),
    (
        "a | stats count() user",
        18,
        "expected 'by' or '|' after count()",
    ),
    (
        "a | stats count() by a *",
        23,
        "unexpected '*' after the stats stage",
    ),
    ("a | top", 7, "expected a field after top"),
    ("a | top 5", 9, "expected a field after top 5"),
    ("a | top 0 user", 8, "top 0 would return nothing"),
    ("a | rare 0 user", 9, "rare 0 would return nothing"),
    (
        "a | top 5x user",
        8,
        "expected a whole number after top, found '5x'",
    ),
    ("a | top 99999999999999999999999 user", 8, "is too large"),
    ("a | top user, host", 12, "top counts one field"),
    (
        "a | top user host",
        13,
        "unexpected 'host' after the top stage",
    ),
    ("a | timechart", 13, "expected count() after timechart"),
    ("a | timechart span=1x count()", 20, "unknown unit 'x'"),
    ("a | timechart span=0m count()", 19, "longer than 0"),
    (
        "a | timechart span=h count()",
        19,
        "expected a duration after 'span=' (like 5m or 1h), found 'h'",
    ),
    ("a | timechart span=1.5h count()", 20, "bad duration '1.5h'"),
    ("a | timechart span count()", 19, "expected '=' after span"),
    ("a | timechart span= count()", 20, "found 'count'"),
    (
        "a | timechart span=1h span=2h count()",
        22,
        "span= is given twice",
    ),
    ("a | timechart span=-1h count()", 19, "expected a duration"),
    (
        "a | timechart count() by",
        24,
        "expected a field after 'by'",
    ),
    (
        "a | timechart count() by a, b",
        26,
        "timechart splits by one field",
    ),
    ("a | sort", 8, "expected a field after sort"),
    ("a | sort -", 10, "expected a field after '-'"),
    ("a | sort a b", 11, "expected ',' before 'b'"),
    ("a | sort a -b", 11, "expected ',' before the next sort key"),
    ("a | sort a,", 11, "expected a field after ','"),
    ("a | head 0", 9, "head 0 would return nothing"),
    (
        "a | head x",
        9,
        "expected a whole number after head, found 'x'",
    ),
    ("a | head -5", 9, "expected a whole number after head"),
    ("a | head 10.5", 9, "found '10.5'"),
    ("a | head 10 20", 12, "unexpected '20' after the head stage"),
    (
        "a | head 10 foo",
        12,
        "expected '|' or the end of the query",
    ),
    ("a | fields", 10, "expected a field after fields"),
    ("a | fields a, *", 14, "expected a field after ','"),
    ("a | fields `x", 11, "unclosed '`'"),
    (
        "a | fields \"x y\"",
        11,
        "put unusual field names in backticks",
    ),
    (
        "a | fields a \"b\"",
        13,
        "unexpected '\"' after the fields stage",
    ),
    ("a | head 5 | 頭", 13, "unknown stage '頭'"),
];

#[test]
fn syntax_errors_say_where_and_what() {
    let mut failures = Vec::new();
    for &(query, pos, fragment) in ERRORS {
        match parse(query) {
            Ok(q) => failures.push(format!("{query:?}: parsed as {}", render(&q))),
            Err(e) => {
                if e.pos != pos || !e.message.contains(fragment) {
                    failures.push(format!(
                        "{query:?}\n   expected at {pos}: ...{fragment}...\n        got {e}\n{}",
                        e.caret(query)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        ERRORS.len(),
        failures.join("\n")
    );
}

/// The text of each leaf term's span, then of each stage's, in order.
fn spans(q: &Query) -> Vec<Span> {
    fn walk(e: &Expr, out: &mut Vec<Span>) {
        match e {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| walk(i, out)),
            Expr::Not(inner) => walk(inner, out),
            Expr::Match { span, .. }
            | Expr::Range { span, .. }
            | Expr::Cidr { span, .. }
            | Expr::Exists { span, .. }
            | Expr::Text { span, .. } => out.push(*span),
        }
    }
    let mut out = Vec::new();
    if let Some(e) = &q.search {
        walk(e, &mut out);
    }
    for s in &q.stages {
        out.push(match s {
            Stage::Stats { span, .. }
            | Stage::Top { span, .. }
            | Stage::Timechart { span, .. }
            | Stage::Sort { span, .. }
            | Stage::Head { span, .. }
            | Stage::Fields { span, .. } => *span,
        });
    }
    out
}

const SPANS: &[(&str, &[&str])] = &[
    ("a  \"b c\" -d", &["a", "\"b c\"", "d"]),
    (
        "user = bob port>=5 ip=10.0.0.0/8 x=*",
        &["user = bob", "port>=5", "ip=10.0.0.0/8", "x=*"],
    ),
    ("(NOT user!=\"x\")", &["user!=\"x\""]),
    ("u IN (a, \"b\")", &["a", "\"b\""]),
    ("`a b`=1..2", &["`a b`=1..2"]),
    ("earliest=-1h ユーザー=太郎", &["ユーザー=太郎"]),
    (
        "x |  stats count() by a , b  | top 3 u| sort -a|head  |fields f",
        &[
            "x",
            "stats count() by a , b",
            "top 3 u",
            "sort -a",
            "head",
            "fields f",
        ],
    ),
    (
        "| timechart span=1h count() by h ",
        &["timechart span=1h count() by h"],
    ),
];

#[test]
fn spans_cover_what_was_written() {
    for (query, expected) in SPANS {
        let q = parse(query).unwrap_or_else(|e| panic!("{query:?}: {e}"));
        let got: Vec<&str> = spans(&q).iter().map(|s| &query[s.start..s.end]).collect();
        assert_eq!(&got, expected, "{query:?}");
    }
}

#[test]
fn carets_point_at_the_error() {
    let cases = [
        ("user= | head", "user= | head\n     ^"),
        ("a | stat count()", "a | stat count()\n    ^"),
        ("ユーザー=\"太郎", "ユーザー=\"太郎\n         ^"),
        ("ログ失敗 | 集計", "ログ失敗 | 集計\n           ^"),
        ("a=1\n| head 0", "| head 0\n       ^"),
    ];
    for (query, expected) in cases {
        let e = parse(query).expect_err(query);
        assert_eq!(e.caret(query), expected, "{query:?}: {e}");
    }
}

#[test]
fn limits() {
    let deep = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&deep).is_ok());
    let deeper = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let e = parse(&deeper).expect_err("too deep");
    assert_eq!(e.pos, MAX_DEPTH);
    assert!(e.message.contains("nests too deeply"), "{e}");
    // Negations count as nesting too; a wall of them is refused, not overflowed.
    let e = parse(&"NOT ".repeat(10_000)).expect_err("too deep");
    assert_eq!(e.pos, 4 * MAX_DEPTH);
    let e = parse(&format!("{}a", "-".repeat(MAX_DEPTH + 1))).expect_err("too deep");
    assert_eq!(e.pos, MAX_DEPTH);
    let e = parse(&"(".repeat(MAX_QUERY_LEN)).expect_err("too deep");
    assert_eq!(e.pos, MAX_DEPTH);

    let long = "a ".repeat(MAX_QUERY_LEN / 2);
    assert_eq!(long.len(), MAX_QUERY_LEN);
    assert!(parse(&long).is_ok());
    let Err(e) = parse(&format!("{long}b")) else {
        panic!("a query over the limit was accepted");
    };
    assert_eq!(e.pos, MAX_QUERY_LEN);
    assert!(e.message.contains("too long"), "{e}");
    // The position stays on a character boundary when the limit falls inside one.
    let Err(e) = parse(&format!("a{}", "日".repeat(MAX_QUERY_LEN / 3 + 1))) else {
        panic!("a query over the limit was accepted");
    };
    assert!(e.pos <= MAX_QUERY_LEN && MAX_QUERY_LEN - e.pos < 3);
    assert!(e.caret("a日").ends_with('^'));
}

// ---------------------------------------------------------------- generated queries

/// A small deterministic generator (xorshift), so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Leaf terms and their rendering.
const LEAVES: &[(&str, &str)] = &[
    ("failed", "'failed'"),
    ("\"failed password\"", "'failed password'"),
    ("user=bob", "user='bob'"),
    ("User:adm*", "User='adm*'"),
    ("port>1024", "(range port >1024)"),
    ("port=1..5", "(range port >=1 <=5)"),
    ("ip=10.0.0.0/8", "(cidr ip 10.0.0.0/8)"),
    ("host=*", "(exists host)"),
    ("a!=b", "(not a='b')"),
    ("名前=太郎", "名前='太郎'"),
    (r"Image=C:\x\*", r"Image='C:\x\*'"),
];

/// A random search written with every compound term in parentheses, and the
/// rendering the parser must give it.
fn gen_expr(rng: &mut Rng, depth: usize) -> (String, String) {
    if depth == 0 || rng.below(3) == 0 {
        let (text, shown) = LEAVES[rng.below(LEAVES.len())];
        return (text.to_string(), shown.to_string());
    }
    match rng.below(3) {
        0 => {
            let (t, s) = gen_expr(rng, depth - 1);
            let not = rng.pick(&["NOT ", "not ", "-"]);
            (format!("{not}({t})"), format!("(not {s})"))
        }
        kind => {
            let n = 2 + rng.below(3);
            let sep = if kind == 1 {
                rng.pick(&[" ", " AND ", " and ", "  "])
            } else {
                rng.pick(&[" OR ", " or "])
            };
            let parts: Vec<(String, String)> = (0..n).map(|_| gen_expr(rng, depth - 1)).collect();
            let text = parts
                .iter()
                .map(|p| format!("({})", p.0))
                .collect::<Vec<_>>()
                .join(sep);
            let shown = parts
                .iter()
                .map(|p| p.1.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let name = if kind == 1 { "and" } else { "or" };
            (text, format!("({name} {shown})"))
        }
    }
}

#[test]
fn generated_queries_parse_as_built() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let (text, shown) = gen_expr(&mut rng, 4);
        let stages = ["", " | head 3", " | stats count() by user | sort -count"];
        let stage = stages[rng.below(stages.len())];
        let query = format!("{text}{stage}");
        let q = parse(&query).unwrap_or_else(|e| panic!("{query:?}: {e}\n{}", e.caret(&query)));
        let got = render(&q);
        assert!(
            got.starts_with(&shown),
            "{query:?}\n expected {shown}\n      got {got}"
        );
        for s in spans(&q) {
            assert!(
                s.start <= s.end && s.end <= query.len(),
                "{query:?}: span {s:?}"
            );
        }
    }
}

/// Random pieces glued together: parsing must not panic, and an error's position
/// must be a character boundary of the text.
#[test]
fn token_soup_never_panics() {
    let pieces = [
        "a",
        "user",
        "=",
        "!=",
        ":",
        ">",
        ">=",
        "<",
        "..",
        "*",
        "?",
        "\"",
        "\\",
        "`",
        "(",
        ")",
        "|",
        ",",
        "-",
        "+",
        " ",
        " AND ",
        " OR ",
        "NOT ",
        " IN ",
        "earliest=",
        "latest=",
        "-24h",
        "2023-08-15",
        "10.0.0.0/8",
        "0x1F",
        "stats",
        "count()",
        " by ",
        "top",
        "rare",
        "sort",
        "head",
        "fields",
        "timechart",
        "span=",
        "1h",
        "5",
        "0",
        "日本",
        "é",
        "\n",
        "\t",
    ];
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let n = 1 + rng.below(12);
        let text: String = (0..n).map(|_| rng.pick(&pieces)).collect();
        match parse(&text) {
            Ok(q) => {
                for s in spans(&q) {
                    assert!(
                        s.start <= s.end && s.end <= text.len(),
                        "{text:?}: span {s:?}"
                    );
                    assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
                }
            }
            Err(e) => {
                assert!(
                    e.pos <= text.len() && text.is_char_boundary(e.pos),
                    "{text:?}: {e}"
                );
                let _ = e.caret(&text);
            }
        }
    }
}

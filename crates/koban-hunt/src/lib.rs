//! Koban's hunting query language: a search over event fields and free text, then a
//! pipeline of stages over what it found.
//!
//! ```text
//! EventID=4625 AND (TargetUserName=adm* OR IpAddress=10.0.0.0/8) -Status=0x0 "failed"
//!     earliest=-24h | stats count() by IpAddress | sort -count | head 20
//! ```
//!
//! [`parse`] turns the text into a [`Query`]; a [`QueryError`] names the byte where
//! the text went wrong and what was expected there (`at 17: expected a value after
//! '='`), and [`QueryError::caret`] points at it.
//!
//! # The search
//!
//! Everything before the first `|` (outside quotes) is the search; an empty search,
//! or a lone `*`, matches every event.
//!
//! | Written | Means |
//! |---|---|
//! | `a b`, `a AND b` | both |
//! | `a OR b` | either; OR binds looser than AND: `a b OR c` is `(a b) OR c` |
//! | `NOT a`, `-a` | not `a` (keywords in any case: `and`, `Or`) |
//! | `( ... )` | grouping |
//! | `failed`, `"failed password"` | the text occurs in the event |
//! | `user=bob`, `user:bob` | the field equals the value, ignoring case |
//! | `user=adm*`, `user=j?hn` | `*` any run of characters, `?` one character |
//! | `user!=bob` | NOT `user=bob` |
//! | `user=*` | the field is present |
//! | `user IN (a, b, c)` | `user=a OR user=b OR user=c` |
//! | `port>1024`, `>=`, `<`, `<=` | numeric comparison: `10`, `-2.5`, `0x1F` |
//! | `port=1..1024` | between, both ends included |
//! | `ip=10.0.0.0/8`, `ip=fe80::/10` | the address is in the network (`ip=10.1.2.3` is a plain match) |
//! | `earliest=-24h`, `latest=now` | event time bounds, not a field: `-30s`, `-15m`, `-7d`, `+1h`, `now`, `2023-08-15` (UTC midnight), `2023-08-15T10:00:00Z`, `2023-08-15T12:00:00+02:00` |
//!
//! Field names are letters, digits, `_`, `.`, `-` and `@` and start with a letter,
//! `_` or `@` (`@source`, `host.name`, `winlog.event_data.User`); any other name goes
//! in backticks: `` `event data`=x ``, which also makes `` `earliest` `` a plain field.
//! Spaces around `=`, `!=`, `<`, `>` are allowed (`EventID = 4625`); after `:` the
//! value must follow at once, so that `Error: disk full` is not taken for a field.
//! `fe80::1`, `http://x` and `C:\Windows` are text, not fields.
//!
//! `earliest=` and `latest=` belong to the whole query: each at most once, beside the
//! search, not inside parentheses, OR or NOT.
//!
//! ## Values and escapes
//!
//! A value (and a text term) is kept as typed, and means what a Sigma value means:
//! `*` and `?` are wildcards, `\*`, `\?` and `\\` the literal characters, and a
//! backslash before anything else is itself, so `Image=C:\Windows\System32\cmd.exe`
//! needs no doubling and `C:\Windows\\*` is everything in the folder. The query
//! itself decodes only what decides where a value ends: `\"` inside quotes, and in a
//! bare value a backslash before a space, `(`, `)`, `|`, `,` or `"`. Quoted values
//! keep their wildcards too, but are never read as `*` (present), a range or a
//! network.
//! Parentheses opened inside a word belong to it: `CommandLine=*Invoke(x)*`.
//! To search for a word that is a keyword or starts with `-`, quote it: `"-enc"`.
//!
//! # The pipeline
//!
//! | Stage | Does |
//! |---|---|
//! | `stats count() [as NAME] [by F1, F2]` | counts per group (one total row without `by`); the column is `count` unless named |
//! | `top [N] FIELD`, `rare [N] FIELD` | the N (default 10) most / least common values |
//! | `timechart [span=1h] count() [by FIELD]` | counts per time bucket: `30s`, `5m`, `1h`, `1d`, `1w` (default 1h) |
//! | `sort -F1, +F2, F3` | orders by fields; `-` is descending |
//! | `head [N]` | the first N rows (default 10) |
//! | `fields F1, F2` | keeps only these fields |
//!
//! Stage names and `count`, `as`, `by`, `span` are case-insensitive.
//!
//! # Limits
//!
//! A query is at most [`MAX_QUERY_LEN`] bytes, and parentheses and negations nest at
//! most [`MAX_DEPTH`] deep.

pub mod ast;
mod error;
mod lexer;
mod parser;
mod stages;
mod time;

pub use ast::{Bound, Expr, Query, SortKey, Span, Stage, TimeBound};
pub use error::QueryError;
pub use parser::{parse, MAX_DEPTH, MAX_QUERY_LEN};

//! The console's words in English and Japanese. Each user picks one; without a choice
//! the browser's `Accept-Language` decides.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The first of `en`/`ja` the browser lists, else English.
    pub fn from_accept(header: Option<&str>) -> Lang {
        for part in header.unwrap_or_default().split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("ja") {
                return Lang::Ja;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::En
    }
}

/// (key, English, Japanese).
const WORDS: &[(&str, &str, &str)] = &[
    ("dashboard", "Dashboard", "ダッシュボード"),
    ("alerts", "Alerts", "アラート"),
    ("incidents", "Incidents", "インシデント"),
    ("rules", "Rules", "ルール"),
    ("sources", "Sources", "ログソース"),
    ("admin", "Tenants & users", "テナントとユーザー"),
    ("audit", "Audit log", "監査ログ"),
    ("login", "Log in", "ログイン"),
    ("logout", "Log out", "ログアウト"),
    ("user", "User", "ユーザー"),
    ("password", "Password", "パスワード"),
    (
        "login_failed",
        "Wrong user or password.",
        "ユーザー名またはパスワードが違います。",
    ),
    (
        "locked",
        "Account locked after repeated failures. Try again later.",
        "失敗が続いたためアカウントはロックされています。しばらくしてから再試行してください。",
    ),
    ("tenant", "Tenant", "テナント"),
    ("all_tenants", "All tenants", "全テナント"),
    ("severity", "Severity", "重大度"),
    ("impact", "Impact", "影響度"),
    ("urgency", "Urgency", "緊急度"),
    ("state", "State", "状態"),
    ("level", "Level", "レベル"),
    ("rule", "Rule", "ルール"),
    ("title", "Title", "タイトル"),
    ("count", "Count", "件数"),
    ("time", "Time", "時刻"),
    ("first_seen", "First seen", "初回"),
    ("last_seen", "Last seen", "最終"),
    ("host", "Host", "ホスト"),
    ("verdict", "Verdict", "判定"),
    ("untriaged", "Not triaged", "未判定"),
    ("apply", "Apply", "適用"),
    ("filter", "Filter", "絞り込み"),
    ("selected", "to the selected alerts", "を選択したアラートに"),
    ("timeline", "Timeline", "タイムライン"),
    (
        "tactics",
        "ATT&CK tactics (kill-chain order)",
        "ATT&CK 戦術（キルチェーン順）",
    ),
    ("scope", "Scope", "影響範囲"),
    ("reason", "Reason", "理由"),
    ("comments", "Comments and case log", "コメントと対応記録"),
    ("comment", "Comment", "コメント"),
    ("add_comment", "Add comment", "コメントを追加"),
    ("change_state", "Change state", "状態を変更"),
    ("note", "Note", "メモ"),
    ("sla", "SLA clocks", "SLA タイマー"),
    ("target", "Target", "目標"),
    ("took", "Took", "所要"),
    ("running", "Running", "経過"),
    ("breached", "BREACHED", "超過"),
    ("ok", "ok", "正常"),
    ("events_total", "Events stored", "保存イベント"),
    ("alerts_over_time", "Alerts per day", "日別アラート"),
    (
        "incidents_by_severity",
        "Open incidents by severity",
        "重大度別の未解決インシデント",
    ),
    ("top_rules", "Top rules", "上位ルール"),
    ("top_hosts", "Top hosts", "上位ホスト"),
    ("top_users", "Top users", "上位ユーザー"),
    (
        "heatmap",
        "ATT&CK techniques seen",
        "検知された ATT&CK テクニック",
    ),
    (
        "silent",
        "Sources gone silent (no event for 1 h)",
        "停止したログソース（1 時間イベントなし）",
    ),
    ("none", "None.", "なし。"),
    ("enabled", "Enabled", "有効"),
    ("disabled", "Disabled", "無効"),
    ("enable", "Enable", "有効にする"),
    ("disable", "Disable", "無効にする"),
    ("search_rules", "Search rules", "ルール検索"),
    ("source", "Source", "ソース"),
    ("received", "Received", "受信"),
    ("stored", "Stored", "保存"),
    ("rate", "Events/s (last minute)", "イベント/秒（直近 1 分）"),
    ("new_token", "New ingest token", "取り込みトークンを発行"),
    (
        "token_once",
        "Shown once — copy it now:",
        "一度だけ表示されます。今コピーしてください：",
    ),
    ("service", "Service", "サービス形態"),
    ("role", "Role", "ロール"),
    ("add_user", "Add user", "ユーザーを追加"),
    ("language", "Language", "言語"),
    ("refused", "Refused", "拒否されました"),
    ("not_found", "Not found.", "見つかりません。"),
    (
        "new_alerts",
        "new alerts — reload",
        "件の新しいアラート — 再読み込み",
    ),
    ("entities", "Entities", "エンティティ"),
    ("why", "Why", "検知理由"),
    ("more", "More", "さらに表示"),
    ("assignee", "Assignee", "担当者"),
    ("hunt", "Hunt", "ハンティング"),
    ("query", "Query", "クエリ"),
    ("run", "Run", "実行"),
    ("save_as", "Save as", "名前を付けて保存"),
    ("save", "Save", "保存"),
    ("saved_searches", "Saved searches", "保存した検索"),
    ("history", "History", "履歴"),
    ("from", "From", "開始"),
    ("until", "Until", "終了"),
    ("kind", "Kind", "種別"),
    ("value", "Value", "値"),
    ("export", "Export", "エクスポート"),
    ("summary", "Summary", "概要"),
    ("matched", "matched", "件一致"),
    (
        "hunt_help",
        "Field filters (Computer=ws01, EventID>=4624, IpAddress=10.0.0.0/8, Image=*\\\\powershell.exe), AND / OR / NOT, free text, earliest=-24h; then | stats count() by F, top, rare, timechart span=1h count(), sort -F, head N, fields A, B. Click a value to filter on it.",
        "フィールド条件（Computer=ws01、EventID>=4624、IpAddress=10.0.0.0/8、Image=*\\\\powershell.exe）、AND / OR / NOT、フリーテキスト、earliest=-24h。続けて | stats count() by F、top、rare、timechart span=1h count()、sort -F、head N、fields A, B。値をクリックするとその値で絞り込みます。",
    ),
    (
        "read_only",
        "Read-only: your role cannot change this case.",
        "閲覧のみ：このロールでは変更できません。",
    ),
    ("actions", "Response", "対応"),
    ("awaiting_you", "Waiting for your decision", "あなたの承認待ち"),
    ("playbook_runs", "Playbook runs", "プレイブックの実行"),
    ("no_actions", "No response actions yet.", "対応アクションはまだありません。"),
    ("no_runs", "No playbook has run yet.", "プレイブックはまだ実行されていません。"),
    ("action", "Action", "アクション"),
    ("requested_by", "Requested by", "依頼者"),
    ("approved_by", "Decided by", "承認者"),
    ("verification", "Verification", "検証結果"),
    ("approve", "Approve", "承認"),
    ("reject", "Reject", "却下"),
    ("undo", "Undo", "取り消し"),
    ("playbook", "Playbook", "プレイブック"),
    ("trigger", "Trigger", "トリガー"),
    ("outcomes", "Outcomes", "結果"),
    ("last_step", "Last step", "最後のステップ"),
    ("steps", "Steps", "経過"),
    ("observed", "Observed on the host", "ホストで確認した状態"),
];

/// The word for `key` in `lang`; an unknown key is shown as itself (a missing
/// translation is visible, never a blank).
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    match WORDS.iter().find(|(k, _, _)| *k == key) {
        Some((_, en, ja)) => match lang {
            Lang::En => en,
            Lang::Ja => ja,
        },
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_has_both_languages_and_keys_are_unique() {
        let mut keys: Vec<&str> = WORDS.iter().map(|w| w.0).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate key");
        for (k, en, ja) in WORDS {
            assert!(!en.is_empty() && !ja.is_empty(), "{k}");
        }
        assert_eq!(Lang::from_accept(Some("ja,en-US;q=0.8")), Lang::Ja);
        assert_eq!(Lang::from_accept(Some("de-DE,en;q=0.5")), Lang::En);
    }
}

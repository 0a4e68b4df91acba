"""The console's labels in English and Japanese, and which one a request gets:
`?lang=` (the switch, remembered in a cookie), else the cookie, else the
browser's `Accept-Language`, else English."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "ja")
DEFAULT = "en"
COOKIE = "settlement_console_lang"
ACCEPT_LANGUAGE_MAX = 40  # tags read from the header

LABELS: dict[str, tuple[str, str]] = {
    "console": ("Settlement console", "精算コンソール"),
    "skip": ("Skip to content", "本文へ移動"),
    "nav": ("Sections", "メニュー"),
    "overview": ("Overview", "概要"),
    "trial_balance": ("Trial balance", "試算表"),
    "balances": ("Balances", "勘定残高"),
    "entries": ("Entries", "仕訳明細"),
    "escrow": ("Escrow", "エスクロー"),
    "receivables": ("Receivables", "報酬債権"),
    "payouts": ("Payouts", "支払"),
    "audit_log": ("Audit log", "監査ログ"),
    "verification": ("Chain verification", "チェーン検証"),
    "replay": ("Replay status", "リプレイ状況"),
    "search_job": ("Job id", "案件ID"),
    "search": ("Find escrow", "エスクロー検索"),
    "language": ("Language", "言語"),
    "signed_in_as": ("Signed in as", "ログイン中"),
    "role_finance": ("finance", "経理"),
    "role_auditor": ("auditor", "監査"),
    "sign_in": ("Sign in", "ログイン"),
    "sign_out": ("Sign out", "ログアウト"),
    "token": ("API token", "APIトークン"),
    "token_help": ("The bearer token of SETTLEMENT_API_TOKENS. It is sent once and kept "
                   "by no page or address.", "SETTLEMENT_API_TOKENS のトークン。送信は一度だけで、"
                   "ページやアドレスには残りません。"),
    "token_refused": ("The token was not accepted.", "トークンが認められませんでした。"),
    "signed_out": ("You are signed out.", "ログアウトしました。"),
    "session_ended": ("Your session ended. Sign in again.", "セッションが終了しました。"
                      "再度ログインしてください。"),
    "currency": ("Currency", "通貨"),
    "as_of": ("As of (end of day, JST)", "基準日（日本時間の終わり）"),
    "as_of_now": ("now", "現在"),
    "show": ("Show", "表示"),
    "times_note": ("Times are Japan Standard Time (UTC+09:00).",
                   "時刻は日本時間（UTC+09:00）です。"),
    # Overview
    "safeguarding": ("Client money safeguarded", "顧客資金の保全"),
    "cash": ("Safeguarded cash", "保全口座残高"),
    "obligations": ("Obligations", "債務合計"),
    "coverage_ratio": ("Coverage ratio", "保全率"),
    "shortfall": ("Shortfall", "不足額"),
    "covered": ("Covered", "保全済み"),
    "not_covered": ("Shortfall: not covered", "不足: 保全されていません"),
    "nothing_owed": ("Nothing owed", "債務なし"),
    "owed_workers": ("Owed to workers", "ワーカーへの未払"),
    "refundable_clients": ("Refundable to clients", "クライアントへの返金予定"),
    "in_transit": ("Payouts in transit", "送金中"),
    "overdue_receivables": ("Overdue receivables", "支払期日超過の債権"),
    "overdue_rule": ("past the 60-day deadline, unpaid", "60日の支払期日を超過し未払"),
    "claims": ("claims", "件"),
    "due_soon": ("due within {days} days", "{days}日以内に期日"),
    "next_closing": ("Next closing", "次回締め日"),
    "payment_day": ("payment day", "支払日"),
    "closing_pays": ("pays what is then owed to workers and refundable to clients",
                     "締め時点のワーカー未払と返金予定を支払います"),
    "chart_title": ("Coverage and daily volume, last 90 days", "保全率と日次入金額（直近90日）"),
    "chart_desc": ("Line: coverage ratio at each day's end (100 % dashed). Bars: money "
                   "received into safeguarded cash that day.",
                   "線: 各日終了時点の保全率（破線が100%）。棒: その日の保全口座への入金額。"),
    "chart_table": ("The chart's figures", "グラフの数値"),
    "day": ("Day", "日付"),
    "received": ("Received", "入金額"),
    "no_currency": ("No ledger entries yet.", "仕訳はまだありません。"),
    # Tables
    "account": ("Account", "勘定"),
    "debits": ("Debits", "借方"),
    "credits": ("Credits", "貸方"),
    "balance": ("Balance", "残高"),
    "total": ("Total", "合計"),
    "balanced": ("Debits equal credits", "貸借一致"),
    "unbalanced": ("Debits and credits differ", "貸借不一致"),
    "prefix": ("Accounts", "勘定の種類"),
    "all_accounts": ("all", "すべて"),
    "rows_per_page": ("Rows per page", "表示件数"),
    "first_page": ("First page", "最初のページ"),
    "next_page": ("Next page", "次のページ"),
    "last_page": ("Last page", "最後のページです"),
    "download_csv": ("Download this page as CSV", "このページをCSVでダウンロード"),
    "no_rows": ("No rows.", "該当なし。"),
    "position": ("Position", "位置"),
    "time": ("Time", "時刻"),
    "job": ("Job", "案件"),
    "event": ("Event", "イベント"),
    "side": ("Side", "貸借"),
    "amount": ("Amount", "金額"),
    "running_balance": ("Running balance", "残高推移"),
    "from_day": ("From (JST)", "開始日（日本時間）"),
    "to_day": ("To (JST)", "終了日（日本時間）"),
    # Escrow
    "format": ("Format", "形式"),
    "state": ("State", "状態"),
    "client": ("Client", "クライアント"),
    "worker": ("Worker", "ワーカー"),
    "funded": ("Funded", "入金済み"),
    "held": ("Held", "預り中"),
    "released": ("Released", "支払確定"),
    "refunded": ("Refunded", "返金"),
    "fees": ("Fees", "手数料"),
    "withholding": ("Withholding", "源泉徴収"),
    "items": ("Items", "項目"),
    "item": ("Item", "項目"),
    "timeline": ("Timeline", "履歴"),
    "escrow_not_found": ("No escrow for this job id.", "この案件IDのエスクローはありません。"),
    # Receivables
    "overdue_first": ("Overdue claims, oldest deadline first", "期日超過の債権（期日の古い順）"),
    "all_claims": ("All claims", "すべての債権"),
    "protected": ("Protected", "保全"),
    "unprotected": ("Unprotected", "未保全"),
    "payable": ("Payable", "支払予定"),
    "overdue": ("Overdue", "期日超過"),
    "net": ("Net", "差引支払額"),
    "delivered_at": ("Delivered", "納品"),
    "due_by": ("Due by", "支払期日"),
    "yes": ("yes", "はい"),
    "no": ("no", "いいえ"),
    "filter": ("Filter", "絞り込み"),
    # Payouts
    "payout": ("Payout", "支払"),
    "party": ("Party", "支払先"),
    "party_type": ("Party type", "種別"),
    "status": ("Status", "状態"),
    "all_statuses": ("all", "すべて"),
    "payout_runs": ("Payout runs", "支払バッチ"),
    "run_id": ("Run id", "バッチID"),
    "no_run": ("No payout run yet.", "支払バッチはまだありません。"),
    "closing": ("Closing", "締め日"),
    "run_at": ("Run at", "実行時刻"),
    "run_payouts": ("Payouts", "支払件数"),
    "run_held": ("Held", "保留"),
    "run_carried_over": ("Carried over", "繰越"),
    "run_failed": ("Failed", "失敗"),
    "run_totals": ("Totals per currency", "通貨別合計"),
    "run_paid": ("Paid", "支払額"),
    "run_fees": ("Transfer fees", "振込手数料"),
    "run_sent": ("Sent", "送金額"),
    "zengin_file": ("Download the Zengin 総合振込 file", "全銀総合振込ファイルをダウンロード"),
    "held_parties": ("Parties held or carried over, and why", "保留・繰越の支払先と理由"),
    "reason": ("Reason", "理由"),
    "statements_later": ("Statements to download come with the tax-documents issue; they "
                         "will appear here.", "明細のダウンロードは税務書類の対応で追加され、"
                         "ここに表示されます。"),
    # Audit
    "causation": ("Cause", "原因"),
    "hash": ("Hash", "ハッシュ"),
    "prev_hash": ("Previous hash", "直前のハッシュ"),
    "data": ("Data", "データ"),
    "verify_now": ("Verify the chain now", "今すぐチェーンを検証"),
    "verify_help": ("Recomputes every hash over the event store (seconds per 100,000 events).",
                    "イベントストア全体のハッシュを再計算します（10万件あたり数秒）。"),
    "chain_ok": ("The chain is intact.", "チェーンは正常です。"),
    "chain_broken": ("The chain is broken.", "チェーンが壊れています。"),
    "events_checked": ("Events checked", "検証件数"),
    "first_bad_position": ("First bad position", "最初の不一致位置"),
    "verified_at": ("Verified at", "検証時刻"),
    "not_verified": ("Not verified since the service started.", "起動後まだ検証していません。"),
    "event_store_head": ("Event store head", "イベントストアの末尾"),
    "live_projections": ("Live projections", "稼働中の読み取りモデル"),
    "replay_schema": ("Last replay", "直近のリプレイ"),
    "behind": ("behind", "遅れ"),
    "no_replay": ("No replay schema in this database.", "このデータベースにリプレイはありません。"),
    "replay_help": ("`settlement replay` rebuilds every projection into its own schema and "
                    "prints whether each equals the live one.",
                    "`settlement replay` はすべての読み取りモデルを別スキーマに再構築し、"
                    "稼働中のものと一致するかを出力します。"),
    "last_event": ("Last event", "最終イベント"),
    # Errors
    "error_400": ("That request is not valid", "リクエストが正しくありません"),
    "error_403": ("Not for your role", "この権限では表示できません"),
    "error_403_text": ("Audit pages are for the auditor role.",
                       "監査ページは監査権限のみ閲覧できます。"),
    "error_csrf": ("The form expired or came from another site. Reload the page and try "
                   "again.", "フォームが古いか別サイトからの送信です。再読み込みしてください。"),
    "error_404": ("Not found", "見つかりません"),
    "error_405": ("Method not allowed", "許可されていない操作です"),
    "error_500": ("Something went wrong", "エラーが発生しました"),
    "error_503": ("The read models are not ready yet", "読み取りモデルの準備ができていません"),
    "error_database": ("The database cannot answer now; try again shortly",
                       "データベースが応答しません。しばらくして再度お試しください"),
    "back_to_overview": ("Back to the overview", "概要へ戻る"),
}


def translator(lang: str) -> Callable[[str], str]:
    column = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return lambda key: LABELS[key][column]


def from_accept_language(header: str | None) -> str | None:
    """The first of LANGUAGES the browser prefers (by q-value, then order)."""
    ranked = []
    for n, part in enumerate((header or "").split(",")[:ACCEPT_LANGUAGE_MAX]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, n, primary))
    return min(ranked)[2] if ranked else None


def choose(asked: str | None, remembered: str | None, accept_language: str | None) -> str:
    for lang in (asked, remembered):
        if lang is not None and lang in LANGUAGES:
            return lang
    return from_accept_language(accept_language) or DEFAULT

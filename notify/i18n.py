"""The languages notification emails (and the unsubscribe page) are written in.

A small catalogue per language rather than gettext: a few dozen strings, reviewed together.
Each string is plain text with `str.format` fields; templates escape the result, so user
names filled into them cannot become markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

DEFAULT_LOCALE = "en"


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    name: str  # in the language itself, for a settings menu
    rtl: bool
    digits: str  # the digits 0-9 as this language writes numbers
    strings: Mapping[str, str]

    @property
    def dir(self) -> str:
        return "rtl" if self.rtl else "ltr"

    def number(self, value: int) -> str:
        return str(value).translate(str.maketrans("0123456789", self.digits))

    def template(self, key: str) -> str:
        """The string for `key`; English where this language lacks it."""
        return self.strings.get(key) or LANGUAGES[DEFAULT_LOCALE].strings[key]

    def text(self, key: str, **values: object) -> str:
        return self.template(key).format(**values)

    def html(self, key: str, **values: object) -> Markup:
        """The string as HTML: values are escaped unless they are `Markup` already."""
        return escape(self.template(key)).format(**values)

    def count(self, key: str, count: int, *, as_html: bool = False, **values: object) -> str:
        """`key_one` for exactly one, else `key_many`, with `count` in local digits."""
        form = f"{key}_one" if count == 1 else f"{key}_many"
        if as_html:
            return self.html(form, count=self.number(count), **values)
        return self.text(form, count=self.number(count), **values)


_EN = {
    "subject_one": "ClientVault: 1 document change",
    "subject_many": "ClientVault: {count} document changes",
    "intro_one": "1 document change in {client}:",
    "intro_many": "{count} document changes in {client}:",
    "document.created": "New document",
    "document.version_added": "New version",
    "document.deleted": "Moved to trash",
    "document.restored": "Restored from trash",
    "request.opened": "Document requested",
    "request.submitted": "Submitted for a document request",
    "request.answered": "Document request answered",
    "request.reminder.due_soon": "Reminder: documents requested are due soon",
    "request.reminder.overdue": "Reminder: documents requested are overdue",
    "link.dropped": "Received through an upload link",
    "quota.threshold": "Storage quota in use",
    "changed": "Changed",
    "client": "Client",
    "folder": "Folder",
    "by_at": "By {who}, {when}",
    "message_from": "Message from {who}:",
    "footer": "You receive this because you have access to {client} in ClientVault.",
    "unsubscribe": "Stop these emails for {client}",
    "page_title": "Email notifications",
    "page_confirm": "Stop email notifications about {client} to {email}?",
    "page_button": "Stop these emails",
    "page_done": (
        "You will no longer receive email notifications about {client}. "
        "You can turn them on again in your notification settings."
    ),
    "page_invalid": "This link is not valid.",
}

_FA = {
    "subject_one": "ClientVault: {count} تغییر در اسناد",
    "subject_many": "ClientVault: {count} تغییر در اسناد",
    "intro_one": "{count} تغییر در اسناد {client}:",
    "intro_many": "{count} تغییر در اسناد {client}:",
    "document.created": "سند جدید",
    "document.version_added": "نسخهٔ جدید",
    "document.deleted": "انتقال به سطل زباله",
    "document.restored": "بازیابی از سطل زباله",
    "request.opened": "درخواست سند",
    "request.submitted": "ارسال برای درخواست سند",
    "request.answered": "پاسخ به درخواست سند",
    "request.reminder.due_soon": "یادآوری: مهلت ارسال اسناد درخواستی نزدیک است",
    "request.reminder.overdue": "یادآوری: مهلت ارسال اسناد درخواستی گذشته است",
    "link.dropped": "دریافت‌شده از طریق پیوند بارگذاری",
    "quota.threshold": "سهمیهٔ فضای ذخیره‌سازی مصرف‌شده",
    "changed": "تغییر",
    "client": "مشتری",
    "folder": "پوشه",
    "by_at": "توسط {who}، {when}",
    "message_from": "پیام از {who}:",
    "footer": "این ایمیل را دریافت می‌کنید چون به {client} در ClientVault دسترسی دارید.",
    "unsubscribe": "توقف این ایمیل‌ها برای {client}",
    "page_title": "اعلان‌های ایمیلی",
    "page_confirm": "ارسال اعلان‌های ایمیلی دربارهٔ {client} به {email} متوقف شود؟",
    "page_button": "توقف این ایمیل‌ها",
    "page_done": (
        "دیگر اعلان ایمیلی دربارهٔ {client} دریافت نمی‌کنید. "
        "می‌توانید در تنظیمات اعلان‌ها دوباره آن‌ها را فعال کنید."
    ),
    "page_invalid": "این پیوند معتبر نیست.",
}

_HE = {
    "subject_one": "ClientVault: שינוי אחד במסמכים",
    "subject_many": "ClientVault: {count} שינויים במסמכים",
    "intro_one": "שינוי אחד במסמכים של {client}:",
    "intro_many": "{count} שינויים במסמכים של {client}:",
    "document.created": "מסמך חדש",
    "document.version_added": "גרסה חדשה",
    "document.deleted": "הועבר לאשפה",
    "document.restored": "שוחזר מהאשפה",
    "request.opened": "בקשה למסמך",
    "request.submitted": "הוגש לבקשת מסמך",
    "request.answered": "ניתן מענה לבקשת מסמך",
    "request.reminder.due_soon": "תזכורת: מועד ההגשה של המסמכים המבוקשים מתקרב",
    "request.reminder.overdue": "תזכורת: מועד ההגשה של המסמכים המבוקשים עבר",
    "link.dropped": "התקבל דרך קישור להעלאה",
    "quota.threshold": "ניצול מכסת האחסון",
    "changed": "שונה",
    "client": "לקוח",
    "folder": "תיקייה",
    "by_at": "על ידי {who}, {when}",
    "message_from": "הודעה מאת {who}:",
    "footer": "הודעה זו נשלחה אליך כי יש לך גישה אל {client} ב-ClientVault.",
    "unsubscribe": "הפסקת הודעות אלה עבור {client}",
    "page_title": "התראות בדוא״ל",
    "page_confirm": "להפסיק לשלוח התראות בדוא״ל על {client} אל {email}?",
    "page_button": "הפסקת ההודעות",
    "page_done": (
        "לא יישלחו אליך עוד התראות בדוא״ל על {client}. אפשר להפעיל אותן מחדש בהגדרות ההתראות."
    ),
    "page_invalid": "הקישור אינו תקף.",
}

_JA = {
    "subject_one": "ClientVault: 書類の変更が1件あります",
    "subject_many": "ClientVault: 書類の変更が{count}件あります",
    "intro_one": "{client} の書類の変更（1件）：",
    "intro_many": "{client} の書類の変更（{count}件）：",
    "document.created": "新しい書類",
    "document.version_added": "新しいバージョン",
    "document.deleted": "ごみ箱に移動",
    "document.restored": "ごみ箱から復元",
    "request.opened": "書類の提出依頼",
    "request.submitted": "提出依頼に対する書類の提出",
    "request.answered": "提出書類の確認結果",
    "request.reminder.due_soon": "リマインダー：依頼中の書類の提出期限が近づいています",
    "request.reminder.overdue": "リマインダー：依頼中の書類の提出期限が過ぎています",
    "link.dropped": "アップロード用リンクから受信",
    "quota.threshold": "ストレージ容量の使用率",
    "changed": "変更",
    "client": "クライアント",
    "folder": "フォルダー",
    "by_at": "操作者：{who}（{when}）",
    "message_from": "{who} からのメッセージ：",
    "footer": (
        "このメールは、ClientVault で {client} へのアクセス権をお持ちの方にお送りしています。"
    ),
    "unsubscribe": "{client} に関するメールの配信を停止",
    "page_title": "メール通知",
    "page_confirm": "{email} 宛ての {client} に関するメール通知を停止しますか？",
    "page_button": "メールの配信を停止",
    "page_done": (
        "今後、{client} に関するメール通知は届きません。通知設定から再び有効にできます。"
    ),
    "page_invalid": "このリンクは無効です。",
}

_ZH = {
    "subject_one": "ClientVault：1 项文件变更",
    "subject_many": "ClientVault：{count} 项文件变更",
    "intro_one": "{client} 有 1 项文件变更：",
    "intro_many": "{client} 有 {count} 项文件变更：",
    "document.created": "新文件",
    "document.version_added": "新版本",
    "document.deleted": "已移至回收站",
    "document.restored": "已从回收站恢复",
    "request.opened": "新的文件提交请求",
    "request.submitted": "已针对文件请求提交文件",
    "request.answered": "文件请求已审核",
    "request.reminder.due_soon": "提醒：所请求的文件即将到期",
    "request.reminder.overdue": "提醒：所请求的文件已逾期",
    "link.dropped": "通过上传链接收到",
    "quota.threshold": "存储配额已使用",
    "changed": "变更",
    "client": "客户",
    "folder": "文件夹",
    "by_at": "操作人：{who}，{when}",
    "message_from": "来自 {who} 的消息：",
    "footer": "您收到此邮件，是因为您在 ClientVault 中有权访问 {client}。",
    "unsubscribe": "停止接收有关 {client} 的此类邮件",
    "page_title": "邮件通知",
    "page_confirm": "要停止向 {email} 发送有关 {client} 的邮件通知吗？",
    "page_button": "停止接收这些邮件",
    "page_done": "您将不再收到有关 {client} 的邮件通知。您可以在通知设置中重新开启。",
    "page_invalid": "此链接无效。",
}

LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English", rtl=False, digits="0123456789", strings=_EN),
    "fa": Language("fa", "فارسی", rtl=True, digits="۰۱۲۳۴۵۶۷۸۹", strings=_FA),
    "he": Language("he", "עברית", rtl=True, digits="0123456789", strings=_HE),
    "ja": Language("ja", "日本語", rtl=False, digits="0123456789", strings=_JA),
    "zh": Language("zh", "中文", rtl=False, digits="0123456789", strings=_ZH),
}
LOCALES = frozenset(LANGUAGES)


def language(locale: str | None) -> Language:
    """The catalogue for `locale` ("fa", "fa-IR" and "FA" all mean Persian), else English."""
    base = (locale or "").split("-")[0].split("_")[0].lower()
    return LANGUAGES.get(base, LANGUAGES[DEFAULT_LOCALE])

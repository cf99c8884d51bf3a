// Attachments in the composer: up to 5 files per message, picked or dropped
// onto the chat panel. Each file is uploaded on its own as soon as it is
// picked, so a refusal (the server's 413/415/422, or a client-side limit)
// is shown for that file only and the others still go.

import { el, button, formatSize } from "./dom.js";
import { t } from "./strings.js";

export const MAX_FILES = 5;
export const MAX_BYTES = 20 * 1024 * 1024;

/** The reason a file was refused, from the server's typed error. */
function refusal(status, code) {
  const known = ["too_many_files", "file_too_large", "request_too_large", "unsupported_type", "empty_file",
    "conversation_ended", "forbidden", "insufficient_storage", "not_found"];
  if (known.includes(code)) return t(`upload.${code}`);
  return t("upload.failed", { status });
}

export class Attachments {
  constructor(chat) {
    this.chat = chat;
    this.items = []; // { file, li, promise, attachment|null, failed }
    this.input = el("input", { class: "visually-hidden", testid: "attachment-input", attrs: { type: "file", multiple: true, tabindex: "-1" } });
    this.input.addEventListener("change", () => {
      this.add([...this.input.files]);
      this.input.value = "";
    });
    this.list = el("ul", { class: "uploads", attrs: { "aria-live": "polite" } });
    this.errors = el("ul", { class: "upload-errors", attrs: { "aria-live": "assertive" } });
    this.root = el("div", { class: "upload-area" }, [this.list, this.errors]);
  }

  /** Adds picked or dropped files; each one is checked and uploaded by itself. */
  add(files) {
    this.errors.replaceChildren();
    for (const file of files) {
      const live = this.items.filter((i) => !i.failed).length;
      if (live >= MAX_FILES) this.error(file, t("upload.too_many_files"));
      else if (file.size === 0) this.error(file, t("upload.empty_file"));
      else if (file.size > MAX_BYTES) this.error(file, t("upload.file_too_large"));
      else this.upload(file);
    }
  }

  error(file, reason) {
    this.errors.append(el("li", { class: "attachment-error", testid: "attachment-error", text: `${file.name}: ${reason}` }));
  }

  upload(file) {
    const status = el("span", { class: "upload-status", text: t("upload.uploading") });
    const item = { file, attachment: null, failed: false };
    const remove = button({ class: "remove", text: "×", attrs: { "aria-label": t("upload.remove", { name: file.name }) },
      on: { click: () => {
        item.failed = true; // excluded from the message
        item.li.remove();
        this.items = this.items.filter((i) => i !== item);
      } } });
    item.li = el("li", { class: "upload" }, [el("span", { class: "name", text: file.name }), el("span", { class: "size", text: formatSize(file.size) }), status, remove]);
    this.list.append(item.li);
    this.items.push(item);
    item.promise = (async () => {
      const body = new FormData();
      body.append("file", file, file.name);
      try {
        const res = await fetch(`/api/conversations/${encodeURIComponent(this.chat.id)}/attachments`, { method: "POST", credentials: "same-origin", body });
        const json = await res.json().catch(() => ({}));
        if (res.status !== 201) throw new Error(refusal(res.status, json.error));
        item.attachment = json.attachments[0];
        status.textContent = t("upload.ready");
        item.li.classList.add("ready");
      } catch (err) {
        item.failed = true;
        item.li.remove();
        this.items = this.items.filter((i) => i !== item);
        this.error(file, err instanceof TypeError ? t("upload.network") : err.message);
      }
    })();
  }

  /** The uploaded attachments once every upload finished; null if one failed just now. */
  async ready() {
    const before = this.items.length;
    await Promise.all(this.items.map((i) => i.promise));
    if (this.items.length !== before) return null;
    return this.items.map((i) => i.attachment).filter(Boolean);
  }

  clear() {
    this.items = [];
    this.list.replaceChildren();
    this.errors.replaceChildren();
  }
}

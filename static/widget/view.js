// DOM builders of the message list: bubbles, system lines, offers of
// choices and attachment links. Every piece of chat text goes in through
// textContent; nothing here parses HTML.

export function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** A message bubble: `author` is customer | agent | system. */
export function bubble(author, name, text, at) {
  const li = el("li", `msg ${author}`);
  li.dataset.testid = "message";
  li.dataset.author = author;
  const meta = el("div", "meta");
  meta.append(el("span", "who", name), el("time", "when", at ? timeOf(at) : ""));
  const body = el("p", "text", text);
  body.dataset.testid = "message-text";
  li.append(meta, body);
  return li;
}

/** A system line ("Alice joined the chat"). */
export function systemLine(text, at) {
  const li = el("li", "note");
  li.dataset.testid = "message";
  li.dataset.author = "system";
  const body = el("span", "text", text);
  body.dataset.testid = "message-text";
  li.append(body);
  if (at) {
    const time = el("time", "visually-hidden", timeOf(at));
    li.append(" ", time);
  }
  return li;
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * Download links of a message's files; `onDownload(attachment)` fetches one
 * with the customer's token (a plain link would lack it), and
 * `loadImage(attachment)` resolves a blob URL for an image's preview.
 */
export function attachmentList(attachments, onDownload, loadImage) {
  const ul = el("ul", "files");
  for (const a of attachments) {
    const li = el("li");
    const link = el("a", "file", a.name);
    link.href = `/api/attachments/${encodeURIComponent(a.id)}`;
    link.dataset.testid = "attachment-link";
    link.addEventListener("click", (e) => {
      e.preventDefault();
      onDownload(a);
    });
    li.append(link, el("span", "size", ` (${sizeText(a.size)})`));
    if (a.content_type.startsWith("image/")) {
      const img = el("img", "preview");
      img.alt = a.name;
      img.dataset.testid = "attachment-preview";
      img.hidden = true;
      loadImage(a).then((src) => {
        if (!src) return;
        img.addEventListener("load", () => URL.revokeObjectURL(src), { once: true });
        img.src = src;
        img.hidden = false;
      });
      li.append(img);
    }
    ul.append(li);
  }
  return ul;
}

/**
 * An offer of choices as buttons. `onChoose(optionId)` / `onDismiss()` send
 * the answer; `markAnswered(block, optionId | null)` shows it as answered.
 */
export function choicesBlock(offer, agentName, at, t, onChoose, onDismiss) {
  const li = el("li", "msg agent choices");
  li.dataset.testid = "choices";
  li.dataset.offerId = offer.offer_id;
  li.dataset.answered = "false";
  const meta = el("div", "meta");
  meta.append(el("span", "who", agentName), el("time", "when", at ? timeOf(at) : ""));
  const prompt = el("p", "text", offer.prompt);
  prompt.id = `prompt-${offer.offer_id}`;
  const group = el("div", "options");
  group.setAttribute("role", "group");
  group.setAttribute("aria-labelledby", prompt.id);
  for (const option of offer.options) {
    const button = el("button", "option", option.label);
    button.type = "button";
    button.dataset.testid = "choice-option";
    button.dataset.optionId = String(option.id);
    button.addEventListener("click", () => onChoose(option.id));
    group.append(button);
  }
  const dismiss = el("button", "dismiss", t("choicesDismiss"));
  dismiss.type = "button";
  dismiss.dataset.testid = "choices-dismiss";
  dismiss.addEventListener("click", onDismiss);
  const state = el("p", "answer");
  li.append(meta, prompt, group, dismiss, state);
  return li;
}

export function markAnswered(block, optionId, t) {
  block.dataset.answered = "true";
  for (const button of block.querySelectorAll("button")) {
    button.disabled = true;
    const chosen = optionId != null && button.dataset.optionId === String(optionId);
    if (button.dataset.optionId) button.setAttribute("aria-pressed", String(chosen));
    if (chosen) button.classList.add("chosen");
  }
  block.querySelector(".dismiss").hidden = true;
  block.querySelector(".answer").textContent = optionId == null ? t("choicesDismissed") : t("choicesAnswered");
}

/** Puts the answered/pending state back while a choice is in flight or failed. */
export function setChoicesBusy(block, busy) {
  if (block.dataset.answered === "true") return;
  for (const button of block.querySelectorAll("button")) button.disabled = busy;
}

// Tiny DOM builder for the supervisor pages. Text only ever goes in through
// text nodes / textContent, never innerHTML, so data cannot become markup.

/**
 * h("button", { class: "x", testid: "y", onclick: fn, type: "button" }, "text", child)
 * Props starting with "on" become event listeners; `testid` becomes data-testid;
 * `dataset` is an object of data-* values; anything else is an attribute
 * (false/null/undefined skip it, true sets it empty).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "testid") {
      node.dataset.testid = value;
    } else if (key === "dataset") {
      for (const [name, v] of Object.entries(value)) node.dataset[name] = String(v);
    } else if (key === "value") {
      // The attribute too, so the initial value is visible to selectors.
      if (tag === "input") node.setAttribute("value", String(value));
      node.value = value;
    } else if (key === "checked") {
      node.checked = Boolean(value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** A labelled form field: returns { row, input }. */
export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  input.id = id;
  return { row: h("div", { class: "field" }, h("label", { for: id }, label), input), input };
}

/** A <select> of options [{ value, label }]. */
export function select(props, options, selected) {
  const node = h("select", props);
  for (const o of options) {
    const option = h("option", { value: String(o.value) }, o.label);
    if (String(o.value) === String(selected ?? "")) option.selected = true;
    node.append(option);
  }
  return node;
}

/** "1 m 05 s" style duration from seconds. */
export function duration(secs) {
  const s = Math.max(0, Math.floor(secs));
  const m = Math.floor(s / 60);
  const rest = String(s % 60).padStart(2, "0");
  return m > 0 ? `${m}:${rest}` : `0:${rest}`;
}

/** Local date and time of a ms timestamp. */
export function when(ms, lang) {
  if (!ms) return "";
  return new Date(ms).toLocaleString(lang === "da" ? "da-DK" : "en-GB");
}

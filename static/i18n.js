// Shared translation helper for the console, the widget frame and the
// supervisor pages: English and Danish, chosen from the browser's language
// and switchable (the choice is remembered in localStorage). Values are
// plain strings and only ever reach the page through textContent.

const STORAGE_KEY = "switchboard-language";
export const LANGUAGES = ["en", "da"];

/** The language to start with: the stored choice, else the browser's first supported one. */
export function initialLanguage(storageKey = STORAGE_KEY) {
  try {
    const stored = localStorage.getItem(storageKey);
    if (LANGUAGES.includes(stored)) return stored;
  } catch (_) {
    // Storage can be blocked (third-party iframe, privacy mode); fall back to the browser.
  }
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "da" || base === "nb" || base === "no") return "da";
    if (base === "en") return "en";
  }
  return "en";
}

/**
 * createI18n({ en: {...}, da: {...} }) returns { t, lang, setLang, onChange }.
 * t("key", { n: 2 }) substitutes {n}; a key missing in Danish falls back to English,
 * and a key missing everywhere is returned as-is so it is visible, not blank.
 */
export function createI18n(dictionaries, storageKey = STORAGE_KEY) {
  let lang = initialLanguage(storageKey);
  const listeners = [];
  const t = (key, params) => {
    const text = (dictionaries[lang] && dictionaries[lang][key]) ?? (dictionaries.en && dictionaries.en[key]) ?? key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  };
  const setLang = (next) => {
    if (!LANGUAGES.includes(next) || next === lang) return;
    lang = next;
    try {
      localStorage.setItem(storageKey, next);
    } catch (_) {
      // Not remembered; still switched for this page.
    }
    document.documentElement.lang = next;
    for (const listener of listeners) listener(next);
  };
  document.documentElement.lang = lang;
  return { t, lang: () => lang, setLang, onChange: (listener) => listeners.push(listener) };
}

/**
 * Fills every element carrying data-i18n="key" (text) or data-i18n-attr="attr:key,attr:key"
 * under root, so static HTML can be translated without touching innerHTML.
 */
export function translateStatic(root, t) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) node.setAttribute(attr, t(key));
    }
  }
}

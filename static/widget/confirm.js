// The frame's confirmation dialog: a modal <dialog> (never window.confirm),
// focus on the safe choice first, Escape cancels, and focus returns to the
// element that opened it.

const dialog = document.getElementById("confirm");
const yes = document.getElementById("confirm-yes");
const no = document.getElementById("confirm-no");
let settle = null;

function finish(answer) {
  if (!settle) return;
  const done = settle;
  settle = null;
  if (dialog.open) dialog.close();
  done(answer);
}

yes.addEventListener("click", () => finish(true));
no.addEventListener("click", () => finish(false));
// Escape fires `cancel`; the dialog then closes by itself.
dialog.addEventListener("cancel", () => finish(false));
dialog.addEventListener("close", () => finish(false));

/** Opens the dialog; resolves true for yes, false for no, Escape or a second call. */
export function confirmEnd() {
  finish(false);
  const opener = document.activeElement;
  return new Promise((resolve) => {
    settle = (answer) => {
      if (opener && typeof opener.focus === "function" && opener.isConnected && !opener.disabled) {
        opener.focus();
      }
      resolve(answer);
    };
    dialog.showModal();
    no.focus();
  });
}

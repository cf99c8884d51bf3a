// Getting the agent's attention for an offer: a short beep (WebAudio, no
// sound file) and a count in the page title while the page is hidden, so an
// agent working in another browser tab notices.

let audio = null;

/** A 0.2 s beep. Browsers may block audio until the first click; then it is silent. */
export function beep() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.2);
  } catch (_) {
    // No audio available: the title badge and the tab still show the offer.
  }
}

let baseTitle = document.title;
let count = 0;

function render() {
  document.title = count > 0 ? `(${count}) ${baseTitle}` : baseTitle;
}

/** Something new arrived; counted in the title only while the page is hidden. */
export function notify() {
  if (!document.hidden) return;
  count += 1;
  render();
}

export function setBaseTitle(title) {
  baseTitle = title;
  render();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    count = 0;
    render();
  }
});

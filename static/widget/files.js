// Files with the customer's bearer token: uploads (one request per file, so
// each file gets its own error), attachment downloads and the transcript.
// Downloads need the Authorization header, so they are fetched and handed
// to the browser as a blob URL with the file's name.

/** Uploads one file; resolves {ok, attachment} or {ok: false, status, code}. */
export async function uploadFile(conversationId, token, file) {
  const body = new FormData();
  body.append("file", file, file.name);
  try {
    const res = await fetch(`/api/conversations/${encodeURIComponent(conversationId)}/attachments`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      body,
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) return { ok: false, status: res.status, code: json.error || "" };
    return { ok: true, attachment: json.attachments[0] };
  } catch {
    return { ok: false, status: 0, code: "network" };
  }
}

/** Fetches `url` with the token and saves it as `name`; resolves false on failure. */
export async function saveWithToken(url, token, name) {
  try {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return false;
    const blob = await res.blob();
    const href = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = href;
    a.download = name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    // Give the browser time to start the download before the URL goes.
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    return true;
  } catch {
    return false;
  }
}

/** Asks the server to mail the transcript; resolves {ok, email} or {ok: false, status, code}. */
export async function emailTranscript(conversationId, token, email) {
  try {
    const res = await fetch(`/api/chats/${encodeURIComponent(conversationId)}/transcript/email`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ email }),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) return { ok: false, status: res.status, code: json.error || "" };
    return { ok: true, email: json.email };
  } catch {
    return { ok: false, status: 0, code: "network" };
  }
}

/** Fetches an image with the token; resolves a blob URL, or null on failure. */
export async function imageUrl(url, token) {
  try {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return null;
    return URL.createObjectURL(await res.blob());
  } catch {
    return null;
  }
}

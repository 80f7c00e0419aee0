// Streamlit's custom-component protocol (components v1), spoken by hand so the bundle carries no
// streamlit-component-lib and no Arrow. The component lives in an iframe and talks to the app by
// window.postMessage:
//   iframe -> app   streamlit:componentReady {apiVersion: 1}, then
//                   streamlit:setComponentValue {value, dataType: "json"} and
//                   streamlit:setFrameHeight {height};
//   app -> iframe   streamlit:render {args, dfs, disabled, theme} on the first load and after every
//                   rerun whose arguments changed. A Python `bytes` argument arrives as a Uint8Array.

function send(type, data) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

/** Listen for render messages and tell Streamlit the component is ready. */
export function connect(onRender) {
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (data && data.type === "streamlit:render") onRender(data.args || {});
  });
  send("streamlit:componentReady", { apiVersion: 1 });
}

/** The component's value in Python (JSON); each call triggers one rerun of the script. */
export function setComponentValue(value) {
  send("streamlit:setComponentValue", { value, dataType: "json" });
}

export function setFrameHeight(height) {
  send("streamlit:setFrameHeight", { height });
}

/** A fresh id for a commit (Python stores a commit once per id). */
export function requestId() {
  if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID().replace(/-/g, "");
  return Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join("");
}
